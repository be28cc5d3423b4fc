"""The banks (``banks``: ``include/banking/banks.yaml``) and the five DAGs that work with them.

- ``payments`` / ``payments_tasks``: bank_payments and bank_transfer_retry's delivery (the
  ACH step is ``finflows.operators.bank.BankPaymentFileOperator``);
  ``transfer_retry_tasks``: bank_transfer_retry;
- ``reconciliation`` / ``reconciliation_tasks``: bank_reconciliation (ACHR01 returns);
- ``health`` / ``health_tasks``: bank_health (probes and each bank's circuit);
- ``daily_report`` / ``daily_report_tasks``: finance_daily_report;
- ``expiry``: our keys and the banks' that run out (``expiring`` below declares them);
- ``common``: what they share (banks to work on, PGP session, SFTP hook, transport, treasury email).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finflows.expiry import Watched


def expiring(cfg: Any = None, **_: Any) -> list[Watched]:
    """Banking's keys that run out (``finflows.expiry.watched``): ours and the enabled banks'."""
    from finflows.flows.banking import banks, expiry

    return expiry.keys(cfg or banks.load())
