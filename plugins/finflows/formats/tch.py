"""The Taiwan Clearing House's code tables, shipped as data in ``include/banking/tch/``.

* transaction codes (TXID → class SC/SD and name), ``txid.json``;
* return reason codes (RCODE → meaning and the classes it applies to), ``return_codes.json``;
* units (7 digits: bank, branch, check digit), ``branches.json``: the whole public table (4,185
  units); a unit it does not list is refused, whatever its check digit.

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

from finflows.settings import INCLUDE

TABLES = INCLUDE / "banking" / "tch"
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
    names: dict[str, str]  # unit → name ("" where the table keeps no name)
    complete: frozenset[str]  # bank codes whose every unit is listed
    exempt: frozenset[str]  # bank codes whose units do not follow the 7-3-1 check digit
    whole: bool = False  # the whole public table: a unit of a bank not in it is refused too


def _seven_three_one(unit: str) -> bool:
    return unit[3:] == "0000" or check_digit(unit) == int(unit[6])


@functools.cache
def branches(path: str | None = None) -> BranchTable:
    raw = json.loads(Path(path or TABLES / "branches.json").read_text(encoding="utf-8"))
    if isinstance(raw, list):  # the public file itself ({code, name, head}): every bank in it is complete
        raw = {"whole_table": True, "units": [b["code"] for b in raw], "names": {b["code"]: b.get("name") for b in raw}}
    if raw.get("whole_table"):
        known = raw.get("names") or {}
        names = {u: known.get(u) or "" for u in raw["units"]}
        banks = {u[:3] for u in names}
        # a bank whose listed units do not all follow 7-3-1 uses another rule (009, most credit cooperatives)
        exempt = {b for b in banks if not all(_seven_three_one(u) for u in names if u[:3] == b)}
        return BranchTable(names, frozenset(banks), frozenset(exempt), whole=True)
    names = {b["code"]: b.get("name") or "" for b in raw["branches"]}
    return BranchTable(names, frozenset(raw.get("complete_banks", ())), frozenset(raw.get("check_digit_exempt", ())))


def check_digit(unit: str) -> int:
    """The check digit of a unit's first six digits: weights 7,3,1,7,3,1, summed, mod 10."""
    return sum(int(d) * w for d, w in zip(unit[:6], _WEIGHTS, strict=True)) % 10


def unit_problem(unit: str) -> str | None:
    """Why ``unit`` is not a clearing-house unit (bank + branch + check digit), or ``None``. (The
    clearing house's own 9990250, every header's receiving org, is a fixed value of the layout.)"""
    if len(unit) != 7 or not (unit.isascii() and unit.isdigit()):
        return "must be a 7-digit unit code (bank 3 + branch 3 + check digit)"
    table = branches()
    if unit in table.names:
        return None
    bank = unit[:3]
    wrong_digit = unit[3:] != "0000" and bank not in table.exempt and int(unit[6]) != check_digit(unit)
    if wrong_digit:
        return f"has a wrong check digit: {unit[:6]} ends in {check_digit(unit)}"
    if table.whole and bank not in table.complete:
        return f"is not in the clearing house's unit table (no bank {bank} in it)"
    if bank in table.complete:
        return f"is not in the clearing house's unit table for bank {bank}"
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
