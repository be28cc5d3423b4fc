"""cashfile_import: CivicaPay cash files → the finance Drive folder and the interim finance database."""
