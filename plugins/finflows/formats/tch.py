"""The Taiwan Clearing House's code tables, shipped as data in ``include/banking/tch/``.

* transaction codes (TXID → class SC/SD and name), ``txid.json``;
* return reason codes (RCODE → meaning and the classes it applies to), ``return_codes.json``;
* units (7 digits: bank, branch, check digit), ``branches.json``: an excerpt of the public table,
  or the whole public table dropped in its place.

Each check returns ``None`` when the value is good, or the reason it is not, so that the readers,
writers and the bank configuration can all name field and value in their own errors. No Airflow
import here.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

TABLES = Path(__file__).resolve().parents[3] / "include" / "banking" / "tch"
_WEIGHTS = (7, 3, 1, 7, 3, 1)
_PID = re.compile(r"[0-9A-Z]{8}|[0-9A-Z]{10}")


@dataclass(frozen=True)
class TxnCode:
    code: str
    txn_class: str  # SC credit (we pay) | SD debit (we collect)
    name: str


@dataclass(frozen=True)
class ReturnCode:
    code: str
    zh: str
    en: str
    applies: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.code} {self.en} ({self.zh})"


@functools.cache
def txn_codes() -> dict[str, TxnCode]:
    raw = json.loads((TABLES / "txid.json").read_text(encoding="utf-8"))["codes"]
    return {c: TxnCode(c, cls, name) for c, (cls, name) in raw.items()}


@functools.cache
def return_codes() -> dict[str, ReturnCode]:
    raw = json.loads((TABLES / "return_codes.json").read_text(encoding="utf-8"))["codes"]
    return {c: ReturnCode(c, v["zh"], v["en"], tuple(v["applies"])) for c, v in raw.items()}


@dataclass(frozen=True)
class BranchTable:
    names: dict[str, str]  # unit → name
    complete: frozenset[str]  # bank codes whose every unit is listed
    exempt: frozenset[str]  # bank codes whose units do not follow the 7-3-1 check digit


@functools.cache
def branches(path: str | None = None) -> BranchTable:
    raw = json.loads(Path(path or TABLES / "branches.json").read_text(encoding="utf-8"))
    if isinstance(raw, list):  # the whole public table: every bank in it is complete
        names = {b["code"]: b.get("name") or "" for b in raw}
        return BranchTable(names, frozenset(c[:3] for c in names), frozenset())
    names = {b["code"]: b.get("name") or "" for b in raw["branches"]}
    return BranchTable(names, frozenset(raw.get("complete_banks", ())), frozenset(raw.get("check_digit_exempt", ())))


def check_digit(unit: str) -> int:
    """The check digit of a unit's first six digits: weights 7,3,1,7,3,1, summed, mod 10."""
    return sum(int(d) * w for d, w in zip(unit[:6], _WEIGHTS, strict=True)) % 10


def unit_problem(unit: str) -> str | None:
    """Why ``unit`` is not a clearing-house unit (bank + branch + check digit), or ``None``."""
    if len(unit) != 7 or not (unit.isascii() and unit.isdigit()):
        return "must be a 7-digit unit code (bank 3 + branch 3 + check digit)"
    table = branches()
    if unit in table.names:
        return None
    bank = unit[:3]
    if bank in table.complete:
        return f"is not in the clearing house's unit table for bank {bank}"
    if unit[3:] == "0000" or bank in table.exempt:
        return None
    expected = check_digit(unit)
    if int(unit[6]) != expected:
        return f"has a wrong check digit: {unit[:6]} ends in {expected}"
    return None


def unit_name(unit: str) -> str:
    return branches().names.get(unit, "")


def txn_problem(code: str, txn_class: str | None = None) -> str | None:
    """Why ``code`` is not a transaction code (of class ``txn_class``), or ``None``."""
    known = txn_codes().get(code)
    if known is None:
        return "is not in the clearing house's transaction-code table"
    if txn_class and known.txn_class != txn_class:
        kind = {"SC": "a payment (SC)", "SD": "a collection (SD)"}
        return f"is {known.name}, {kind[known.txn_class]}; this file's class is {txn_class}"
    return None


def return_problem(code: str, txn_class: str | None = None) -> str | None:
    known = return_codes().get(code)
    if known is None:
        listed = ", ".join(return_codes())
        return f"is not a return reason of the clearing house's table ({listed})"
    if txn_class and txn_class not in known.applies:
        return f"({known.en}) does not apply to {txn_class} entries"
    return None


def describe_return(code: str | None) -> str:
    """A return code with its meaning, for alerts and reports (``04 no such account (無此帳號)``)."""
    if not code:
        return ""
    known = return_codes().get(code)
    return str(known) if known else code


def pid_problem(pid: str) -> str | None:
    """A payee/payer id: 8 (company tax id) or 10 (national id) characters, digits and upper case."""
    if not _PID.fullmatch(pid or ""):
        return "must be 8 (company tax id) or 10 (national id) digits or upper-case letters"
    return None
