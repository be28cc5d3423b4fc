"""What the banking DAGs share: the banks to work on, a bank's PGP keys and SFTP hook, its circuit,
and treasury's email. Imported inside tasks only (it loads providers)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from finflows import settings
from finflows.flows.banking import banks, keys, payments
from finflows.seams import Conn, SftpHook
from finflows.task_support import (
    bad_input_fails_without_retry,
    finance_db,
)

if TYPE_CHECKING:
    from finflows.flows.banking.health import Circuit
    from finflows.pgp import Keyring


log = logging.getLogger(__name__)


def no_approver(cfg: banks.BankConfig, chosen: list[str], triggered_by: str | None) -> str | None:
    """Why a run of these banks would have nobody to approve its files (the configured approvers,
    less the user who triggers it, leave nobody for a bank whose files may need approval), or None.
    Said before anything is batched: never a request that expires because nobody was asked."""
    needing = [b for b in chosen if cfg.bank(b).approval != banks.ApprovalRule.NONE]
    if not needing:
        return None
    try:
        approvers = settings.payment_approvers()
    except settings.ApproverConfigError as e:
        return str(e)
    if [u for u in approvers if u != triggered_by]:
        return None
    who = (
        f"you ({triggered_by}) are the only approver configured"
        if triggered_by in approvers
        else ("no approver is configured")
    )
    return (
        f"nobody could approve the payment files of {', '.join(needing)}: {who} (FINFLOWS_PAYMENT_APPROVERS), "
        "and whoever triggers a run may not approve it. Ask another approver to trigger it, or add one; "
        "nothing was batched"
    )


def choose_banks(requested: list[str] | None, triggered_by: str | None = None, *, paying: bool = False) -> list[str]:
    """The enabled banks (``["all"]``, the schedule's choice, or no params at all), or those a
    manual run asked for (each must be configured). An empty list, or "all" beside named banks,
    is refused: paying every bank is chosen, never what an emptied field means. A bank that is not
    configured, or a configuration that does not load, fails the task at once: no retry can fix
    it, and a run that cannot succeed must not hold the next one. ``paying`` (bank_payments): so
    does a run that would leave nobody to approve its files (``no_approver``), refused in words
    before anything is batched."""
    with bad_input_fails_without_retry(banks.BankConfigError):
        if requested is not None and not requested:
            raise banks.BankConfigError(f"no bank chosen: choose '{settings.ALL_BANKS}' or the banks to pay")
        if requested and settings.ALL_BANKS in requested and len(requested) > 1:
            raise banks.BankConfigError(f"'{settings.ALL_BANKS}' or named banks, not both: {', '.join(requested)}")
        cfg = banks.load()
        if requested is None or requested == [settings.ALL_BANKS]:
            chosen = cfg.enabled
        else:
            chosen = [cfg.bank(b).id for b in requested]
        refusal = no_approver(cfg, chosen, triggered_by) if paying else None
        if refusal:
            raise banks.BankConfigError(refusal)
    log.info("banks to pay: %s", ", ".join(chosen) or "none")
    return chosen


class _Keys:
    """The PGP keys of one task in one throwaway keyring, each read from its connection (pinned to
    its window's fingerprint) the first time it is needed: a staged key whose connection is not
    there yet stops nothing before its day."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self.passphrases: dict[str, str | None] = {}

    def need(self, w: keys.KeyWindow) -> str | None:
        """Load the key (once); its passphrase (our own keys)."""
        from finflows.hooks.pgp import PgpHook

        if w.fingerprint not in self.passphrases:
            armored, fingerprint, passphrase = PgpHook(w.conn_id or "", fingerprint=w.fingerprint).key()
            self.ring.add(armored, fingerprint, f"connection {w.conn_id}")
            self.passphrases[w.fingerprint] = passphrase
        return self.passphrases[w.fingerprint]

    def own(self, cfg: banks.BankConfig, day: dt.date | None) -> list[str | None]:
        """Our keys that may open a file: those valid on ``day`` must load; any other (retired, or
        staged) is tried and skipped when its connection cannot give it. Their passphrases."""
        found = []
        for w in cfg.originator.signing_chain:
            try:
                found.append(self.need(w))
            except Exception:
                if day is None or not w.covers(day):
                    log.warning("our key %s (connection %s) could not be loaded: skipped", w.fingerprint, w.conn_id)
                    continue
                raise
        return list(dict.fromkeys(found))  # each passphrase once

    def open(self, data: bytes, signers: list[str], passphrases: list[str | None]) -> tuple[bytes, str]:
        """Decrypt with whichever of our keys the file is for (each key's passphrase in turn) and
        insist on a good signature from one of ``signers``; (plaintext, the key that signed)."""
        from finflows import pgp

        last: Exception | None = None
        for passphrase in passphrases or [None]:
            try:
                plain = self.ring.decrypt_and_verify(data, signers, passphrase)
                return plain, self.ring.last_signer or signers[0]
            except pgp.SignatureError:
                raise
            except pgp.PgpError as e:  # another of our keys, another passphrase: try the next
                last = e
        raise last or pgp.PgpError("no key of ours could open the file")


Seal = Callable[[bytes, dt.date], tuple[bytes, dict[str, str]]]
Open = Callable[[bytes, dt.date], tuple[bytes, str]]


@contextmanager
def encrypter(cfg: banks.BankConfig, bank: banks.Bank) -> Iterator[Seal]:
    """``seal(data, processing_date)``: encrypted to the bank's key valid on that day and to ours
    (finance can open the archived copy of what it sent), signed with ours valid then; returns
    (cipher, {"encrypted_to", "signed_with"}: the fingerprints, recorded on the batch)."""
    from finflows import pgp

    with pgp.keyring() as ring:
        k = _Keys(ring)

        def seal(data: bytes, day: dt.date) -> tuple[bytes, dict[str, str]]:
            theirs = keys.for_sending(bank.pgp_chain, f"bank {bank.id}", day)
            ours = keys.for_sending(cfg.originator.signing_chain, "our signing key", day)
            k.need(theirs)
            passphrase = k.need(ours)
            cipher = ring.encrypt_and_sign(data, theirs.fingerprint, ours.fingerprint, passphrase, [ours.fingerprint])
            return cipher, {"encrypted_to": theirs.fingerprint, "signed_with": ours.fingerprint}

        yield seal


@contextmanager
def own_decrypter(cfg: banks.BankConfig) -> Iterator[Any]:
    """Open a file we made and archived: decrypt with any of our keys (retired ones too: an archive
    outlives a key), insist on the signature of one of them."""
    from finflows import pgp

    with pgp.keyring() as ring:
        k = _Keys(ring)
        passphrases = k.own(cfg, None)
        ours = [w.fingerprint for w in cfg.originator.signing_chain if w.fingerprint in k.passphrases]
        yield lambda data: k.open(data, ours, passphrases)[0]


@contextmanager
def decrypter(cfg: banks.BankConfig, bank: banks.Bank) -> Iterator[Open]:
    """``open(data, day)``: decrypt a return file with our key and insist on a signature by one of
    the bank's keys valid on the file's day; (plaintext, the fingerprint that signed it)."""
    from finflows import pgp

    with pgp.keyring() as ring:
        k = _Keys(ring)

        def open_(data: bytes, day: dt.date) -> tuple[bytes, str]:
            accepted = keys.for_verifying(bank.pgp_chain, f"bank {bank.id}", day)
            for w in accepted:
                k.need(w)
            return k.open(data, [w.fingerprint for w in accepted], k.own(cfg, day))

        yield open_


def sftp(bank: banks.Bank, *, one_attempt: bool = False) -> SftpHook:
    """The bank's SFTP hook (paramiko or asyncssh, as its ``sftp_client`` says), every session within
    the bank's ``sftp_sessions`` across all DAGs and the monitor; ``one_attempt`` for health checks (no connect retries, a short wait for a slot)."""
    from finflows.hooks.sftp import BankSFTPHook

    return BankSFTPHook(
        ssh_conn_id=bank.sftp_conn_id,
        session_key=f"sftp:{bank.id}",
        session_limit=bank.sftp_sessions,
        limiter=lambda: finance_db().get_conn(),
        session_wait=30 if one_attempt else settings.bank_session_wait(),
        idle_timeout=settings.sftp_idle_timeout(),
        ssh_library=bank.sftp_client.value,
        **({"conn_retry_attempts": 1} if one_attempt else {}),
    )


def transport(
    bank: banks.Bank,
    *,
    aws_conn_id: str = settings.CONN_AWS,
    archive_bucket: str | None = None,
    attempts: int | None = None,
    backoff: float | None = None,
) -> payments.Transport:
    """The archive bucket and the bank's SFTP, with the configured retry policy unless given."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return payments.Transport(
        s3_hook=S3Hook(aws_conn_id=aws_conn_id),
        sftp_hook=sftp(bank),
        archive_bucket=archive_bucket or settings.archive_bucket(),
        attempts=settings.bank_upload_attempts() if attempts is None else attempts,
        backoff=settings.bank_upload_backoff() if backoff is None else backoff,
    )


def email_treasury(subject: str, body: str, also: list[str] | None = None, inline: list[str] | None = None) -> None:
    """HTML email to treasury (and ``also``); files in ``inline`` go in a multipart/related message,
    each with its file name as Content-ID for ``<img src="cid:NAME">``."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=settings.CONN_SMTP) as smtp:
        smtp.send_email_smtp(
            to=(also or []) + settings.treasury_email(),
            subject=subject,
            html_content=body,
            files=inline,
            mime_subtype="related" if inline else "mixed",
        )


def alert_uncertain(deliveries: list[dict[str, Any]]) -> None:
    """Email treasury and operations at once when a delivery ended uncertain."""
    from finflows import emails, links
    from finflows.flows.banking import delivery

    alert = delivery.uncertain_alert(deliveries, links.base_url())
    if alert is not None:
        log.error("%s", alert.subject)
        emails.send(alert, to=settings.treasury_email() + settings.ops_email(), smtp_conn_id=settings.CONN_SMTP)


def alert_attention(new: list[dict[str, Any]]) -> None:
    """Email treasury and operations the rows just raised on the attention list."""
    from finflows import emails
    from finflows.flows.banking import invariants

    mail = invariants.alert(new)
    if mail is not None:
        log.error("%s", mail.subject)
        emails.send(mail, to=settings.treasury_email() + settings.ops_email(), smtp_conn_id=settings.CONN_SMTP)


def check_invariants() -> dict[str, Any]:
    """The cheap money invariants (bank_health, every run): the attention list kept up to date and
    its new rows alerted."""
    from finflows import files
    from finflows.flows.banking import invariants

    with files.connect(finance_db()) as conn:
        result = invariants.check(conn, banks.load())
        new = invariants.sync(conn, result)
        still_open = len(invariants.open_rows(conn))
    alert_attention(new)
    return {"found": len(result.findings), "broken": len(result.broken), "new": len(new), "open": still_open}


def circuit_now(conn: Conn, bank_id: str) -> Circuit:
    from finflows.flows.banking import health

    return health.circuit(conn, bank_id, dt.datetime.now(dt.UTC), settings.bank_circuit_half_open_after())


def run_id() -> str:
    from airflow.sdk import get_current_context

    return get_current_context()["run_id"]
