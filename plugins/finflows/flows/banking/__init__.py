"""The banks (``banks``: ``include/banking/banks.yaml``) and the five DAGs that work with them.

- ``payments`` / ``payments_tasks``: bank_payments and bank_transfer_retry's delivery (the
  ACH step is ``finflows.operators.bank.BankPaymentFileOperator``);
  ``transfer_retry_tasks``: bank_transfer_retry;
- ``reconciliation`` / ``reconciliation_tasks``: bank_reconciliation (ACHR01 returns);
- ``health`` / ``health_tasks``: bank_health (probes and each bank's circuit);
- ``daily_report`` / ``daily_report_tasks``: finance_daily_report;
- ``common``: what they share (banks to work on, PGP session, SFTP hook, transport, treasury email).
"""
