"""tenure_sync: tenure create/update events → the interim finance spreadsheet, later the finance database."""
