"""Each flow's own code, one package per flow: what its DAG's tasks run (``tasks``) and the flow
logic they call, Airflow-free where it can be. Shared mechanisms live one level up
(``finflows.files``, ``finflows.transfer``, ``finflows.formats``, hooks and operators).

- ``cashfile_import``: CivicaPay cash files → Drive and ``ifs`` (DAG ``cashfile_import``)
- ``card_reconciliation``: acquirer statements → ``card`` (DAG ``card_reconciliation``)
- ``chargeback_export``: chargebacks → CSV → card companies' FTP (DAG ``chargeback_export``)
- ``tenure_sync``: tenure events → interim spreadsheet / ``tenure`` (DAG ``tenure_sync``)
- ``banking``: the bank configuration and the five banking DAGs (``bank_payments``,
  ``bank_transfer_retry``, ``bank_reconciliation``, ``bank_health``, ``finance_daily_report``),
  which share the banks, their keys, servers and circuit.
"""
