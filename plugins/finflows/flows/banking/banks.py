"""Bank configuration (``include/banking/banks.yaml``), validated when loaded.

``load()`` returns a ``BankConfig``; a bad entry raises ``BankConfigError`` naming the bank and the
field (``bank ctbc, field cutoff_time: …``). ``${NAME}`` in the file is read from the environment
so that fingerprints and accounts can differ per deployment without editing the file. No Airflow
import here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from finflows import transfer
from finflows.errors import FinflowsError
from finflows.flows.banking import keys
from finflows.formats import tch
from finflows.settings import INCLUDE

DEFAULT_FILE = INCLUDE / "banking" / "banks.yaml"
_VAR = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

Digits = Annotated[str, Field(pattern=r"^[0-9]+$")]
Fingerprint = Annotated[str, Field(pattern=r"^[0-9A-F]{40}$", description="40 hex digits, upper case")]


class BankConfigError(FinflowsError, ValueError):
    pass


class FileFormat(StrEnum):
    ACHP01 = "achp01"
    CSV = "csv"


class SftpClient(StrEnum):
    """The SSH library that speaks to a bank's SFTP server."""

    PARAMIKO = "paramiko"  # the SFTP provider's own client (SFTPHook)
    ASYNCSSH = "asyncssh"  # for a server that allows only modern algorithms (curve25519-sha256, chacha20-poly1305)


class UploadCheck(StrEnum):
    """How an upload is checked before its rename, as the bank's server allows."""

    STAT = transfer.STAT  # stat NAME.part for its size (and NAME before writing)
    LIST = transfer.LIST  # read the size from a directory listing (a server that refuses stat)
    TRUST = transfer.TRUST  # the server acknowledged every write, the close and the rename (it allows neither)


class Originator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    company_id: Annotated[str, Field(pattern=r"^[0-9]{8}$", description="統一編號, 8 digits")]
    signing_key_conn_id: str
    signing_key_fingerprint: Fingerprint | None = None  # one key, valid always; or signing_keys
    signing_keys: list[keys.KeyWindow] | None = None  # our keys with validity windows (rotation)
    key_overlap_max_days: Annotated[int, Field(ge=0, le=366)] = 60  # the longest overlap of two keys of a chain
    max_payments_per_batch: Annotated[int, Field(gt=0, le=99_999_999)] = 5000
    max_bytes_per_batch: Annotated[int, Field(gt=1000)] = 10 * 1024 * 1024

    @model_validator(mode="after")
    def _a_key(self) -> Originator:
        if not (self.signing_key_fingerprint or self.signing_keys):
            raise ValueError("signing_key_fingerprint (one key) or signing_keys (keys with windows) is needed")
        return self

    @property
    def signing_chain(self) -> tuple[keys.KeyWindow, ...]:
        return keys.chain(self.signing_keys, self.signing_key_fingerprint or "", self.signing_key_conn_id)


class AboveAmount(BaseModel):
    """``approval: {above: N}``: a second person approves only a batch whose total is over N NTD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    above: Annotated[int, Field(ge=0)]


class ApprovalRule(StrEnum):
    """When a bank's batches wait for a second person (or ``{above: N}``: ``AboveAmount``)."""

    NONE = "none"
    REQUIRED = "required"


Approval = ApprovalRule | AboveAmount


class Bank(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str  # the key in the file: mega, ctbc, …
    bank_code: Annotated[str, Field(pattern=r"^[0-9]{3}$")]
    name: str
    sftp_conn_id: str
    upload_path: Annotated[str, Field(pattern=r"^/")]
    download_path: Annotated[str, Field(pattern=r"^/")]
    file_format: FileFormat
    encoding: str
    payment_file_pattern: str
    reconciliation_file_pattern: str
    cutoff_time: dt.time
    sending_unit: Annotated[str, Field(pattern=r"^[0-9]{7}$", description="PBANK: bank + branch + check digit")]
    sending_org: Annotated[str | None, Field(description="SORG of header and trailer, when not the sending unit")] = (
        None
    )
    presenting_account: Annotated[str, Field(pattern=r"^[0-9]{1,16}$")]
    pgp_key_conn_id: str
    pgp_key_fingerprint: Fingerprint | None = None  # one key, valid always; or pgp_keys
    pgp_keys: list[keys.KeyWindow] | None = None  # the bank's keys with validity windows (rotation)
    default_txn_code: Annotated[str | None, Field(description="TXID for payments that name none (SC)")] = None
    big5_extensions: bool = False  # the bank accepts cp950's additions to Big5 (€, F9D6–F9FE)
    success_code: Annotated[str | None, Field(pattern=r"^[0-9A-Z]{2}$")] = None  # a bank that lists paid items too
    return_window_days: Annotated[int, Field(ge=0, le=30)] = 2  # else: unreturned after N business days = paid
    sftp_sessions: Annotated[int, Field(ge=1, le=50)] = 5  # concurrent SFTP sessions the bank allows us
    enabled: bool = True
    # Who must approve a batch before it goes out (bank_payments' approve step): "required" (the
    # default: every batch), {above: N} (batches over N NTD), or "none" for a bank whose own channel
    # already enforces dual control.
    approval: Approval = ApprovalRule.REQUIRED
    sftp_client: SftpClient = SftpClient.PARAMIKO
    upload_check: UploadCheck = UploadCheck.STAT

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str, info: ValidationInfo) -> str:
        import codecs

        try:
            name = codecs.lookup(v).name
        except LookupError:
            raise ValueError(f"unknown encoding {v!r}") from None
        if info.data.get("file_format") is FileFormat.ACHP01 and name != "cp950":
            raise ValueError("ACHP01 files are Big5: encoding must be cp950")
        return name

    @field_validator("sending_unit", "sending_org")
    @classmethod
    def _unit_of_this_bank(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        code = info.data.get("bank_code")
        if code and not v.startswith(code):
            raise ValueError(f"{info.field_name} {v} must start with the bank code {code}")
        if problem := tch.unit_problem(v):
            raise ValueError(f"{info.field_name} {v} {problem}")
        return v

    @field_validator("default_txn_code")
    @classmethod
    def _payment_code(cls, v: str | None) -> str | None:
        if v is not None and (problem := tch.txn_problem(v, "SC")):
            raise ValueError(f"default_txn_code {v} {problem}")
        return v

    @field_validator("success_code")
    @classmethod
    def _not_a_return_code(cls, v: str | None) -> str | None:
        if v is not None and v in tch.return_codes():
            raise ValueError(f"success_code {v} is a return reason in the clearing house's table")
        return v

    @model_validator(mode="after")
    def _a_key(self) -> Bank:
        if not (self.pgp_key_fingerprint or self.pgp_keys):
            raise ValueError("pgp_key_fingerprint (one key) or pgp_keys (keys with windows) is needed")
        return self

    @property
    def pgp_chain(self) -> tuple[keys.KeyWindow, ...]:
        return keys.chain(self.pgp_keys, self.pgp_key_fingerprint or "", self.pgp_key_conn_id)

    def needs_approval(self, total: int) -> bool:
        """Whether a batch of this total waits for a second person before it may be uploaded."""
        if isinstance(self.approval, AboveAmount):
            return total > self.approval.above
        return self.approval == ApprovalRule.REQUIRED

    @property
    def paid_codes(self) -> frozenset[str]:
        """Reason codes of a return line that mean paid: the bank's success code (none for a bank
        that lists only the returned items); the CSV variant also leaves it blank."""
        return frozenset({self.success_code} if self.success_code else ())

    @field_validator("payment_file_pattern")
    @classmethod
    def _payment_pattern(cls, v: str) -> str:
        for needed in ("{YYYYMMDD}", "{BATCH}"):
            if needed not in v:
                raise ValueError(f"must contain {needed} so each batch of each day has its own name")
        if "/" in v or "*" in v:
            raise ValueError("is a file name: no '/' or '*'")
        return v

    @field_validator("reconciliation_file_pattern")
    @classmethod
    def _reconciliation_pattern(cls, v: str) -> str:
        if "{YYYYMMDD}" not in v or "/" in v:
            raise ValueError("must be a file name containing {YYYYMMDD}")
        return v

    def reconciliation_regex(self, day: dt.date | None = None) -> re.Pattern[str]:
        """The reconciliation pattern as a regex: ``{YYYYMMDD}`` any 8 digits (or ``day``), ``*`` anything."""
        out = ""
        for part in re.split(r"(\{YYYYMMDD\}|\{BANK\}|\*)", self.reconciliation_file_pattern):
            if part == "{YYYYMMDD}":
                out += day.strftime("%Y%m%d") if day else "[0-9]{8}"
            elif part == "{BANK}":
                out += self.bank_code
            elif part == "*":
                out += ".*"
            else:
                out += re.escape(part)
        return re.compile(out)


class BankConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    originator: Originator
    banks: dict[str, Bank]

    def bank(self, bank_id: str) -> Bank:
        try:
            return self.banks[bank_id]
        except KeyError:
            raise BankConfigError(f"no bank {bank_id!r} in the configuration ({', '.join(self.banks)})") from None

    @property
    def enabled(self) -> list[str]:
        return [b for b, cfg in self.banks.items() if cfg.enabled]


def _interpolate(value: Any, where: str, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}, field {k}" if where else k, env) for k, v in value.items()}
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise BankConfigError(f"{where}: environment variable {m.group(1)} is not set")
            return env[m.group(1)]

        return _VAR.sub(sub, value)
    return value


def parse(raw: dict[str, Any], env: dict[str, str] | None = None) -> BankConfig:
    env = dict(os.environ) if env is None else env
    banks = raw.get("banks") if isinstance(raw, dict) else None
    if not isinstance(banks, dict) or not banks:
        raise BankConfigError("the configuration needs a 'banks' mapping with at least one bank")
    errors = []
    originator = None
    try:
        originator = Originator.model_validate(_interpolate(raw.get("originator") or {}, "originator", env))
    except ValidationError as e:
        errors += [f"originator, field {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()]
    parsed = {}
    for bank_id, entry in banks.items():
        if entry is not None and not isinstance(entry, dict):
            errors.append(f"bank {bank_id}: must be a mapping of its settings, not {type(entry).__name__}")
            continue
        try:
            values = _interpolate(entry or {}, f"bank {bank_id}", env)
            parsed[bank_id] = Bank.model_validate({"id": bank_id} | values)
        except ValidationError as e:
            for err in e.errors():
                loc = ".".join(map(str, err["loc"])) or "(entry)"
                errors.append(f"bank {bank_id}, field {loc}: {err['msg']}")
        except BankConfigError as e:
            errors.append(str(e))
    if originator is not None:
        errors += keys.check(originator.signing_chain, "originator, signing_keys", originator.key_overlap_max_days)
        for bank_id, b in parsed.items():
            errors += keys.check(b.pgp_chain, f"bank {bank_id}, pgp_keys", originator.key_overlap_max_days)
    codes = [b.bank_code for b in parsed.values()]
    errors += [f"bank code {c} is configured twice" for c in sorted({c for c in codes if codes.count(c) > 1})]
    if errors:
        raise BankConfigError("bank configuration is invalid:\n  " + "\n  ".join(errors))
    if originator is None:  # refused above: unreachable
        raise BankConfigError("bank configuration is invalid: no originator")
    return BankConfig(originator=originator, banks=parsed)


def load(path: str | Path | None = None, env: dict[str, str] | None = None) -> BankConfig:
    import yaml

    from finflows import settings

    path = Path(path or settings.get("BANKS_FILE"))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise BankConfigError(f"{path}: {e}") from None
    return parse(raw, env)
