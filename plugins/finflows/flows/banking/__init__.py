"""The banks (``banks``: ``include/banking/banks.yaml``) and the five DAGs that work with them.

- ``payments`` / ``tasks.payments``: bank_payments and bank_transfer_retry's delivery (the
  ACH step is ``finflows.operators.bank.BankPaymentFileOperator``);
  ``tasks.transfer_retry``: bank_transfer_retry;
- ``reconciliation`` / ``tasks.reconciliation``: bank_reconciliation (ACHR01 returns);
- ``health`` / ``tasks.health``: bank_health (probes and each bank's circuit);
- ``daily_report`` / ``tasks.daily_report``: finance_daily_report;
- ``decisions`` / ``tasks.decisions``: treasury_decisions;
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
