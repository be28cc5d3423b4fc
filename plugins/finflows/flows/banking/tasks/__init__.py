"""The banking DAGs' task bodies, one module per DAG as every other flow's ``tasks.py``:
``payments`` (bank_payments), ``transfer_retry`` (bank_transfer_retry), ``reconciliation``
(bank_reconciliation), ``health`` (bank_health), ``daily_report`` (finance_daily_report),
``decisions`` (treasury_decisions). Each is imported inside a task only (it loads providers)."""
