"""Taiwan ACH files built straight from the clearing house's public layout tables.

This builder shares nothing with ``finflows.formats.ach``: the field lists below are the public
V10 layouts as published in ``EzZeng/ach-filing-app`` (``public/data/formats/ACHP01.json`` and
``ACHR01.json``: field id and byte length, in file order), padded as those tables say (numbers
zero-filled on the left, text space-filled on the right, Big5 counted in bytes). Tests read
these files with our reader and compare our writer's output with them, so a misunderstanding of
the layout in our code cannot hide behind the same misunderstanding in the test.
"""

from __future__ import annotations

import datetime as dt

HEADER = (("BOF", 3), ("CDATA", 6), ("TDATE", 8), ("TTIME", 6), ("SORG", 7), ("RORG", 7), ("VERNO", 3), ("FILLER", 210))
DETAIL = (
    ("TYPE", 1),
    ("TXTYPE", 2),
    ("TXID", 3),
    ("SEQ", 8),
    ("PBANK", 7),
    ("PCLNO", 16),
    ("RBANK", 7),
    ("RCLNO", 16),
    ("AMT", 10),
    ("RCODE", 2),
    ("SCHD", 1),
    ("CID", 10),
    ("PID", 10),
    ("SID", 6),
    ("PDATE", 8),
    ("PSEQ", 8),
    ("PSCHD", 1),
    ("CNO", 20),
    ("NOTE", 40),
    ("MEMO", 10),
    ("CFEE", 5),
    ("NOTEB", 20),
    ("FILLER", 39),
)
TRAILER = (
    ("EOF", 3),
    ("CDATA", 6),
    ("TDATE", 8),
    ("SORG", 7),
    ("RORG", 7),
    ("TCOUNT", 8),
    ("TAMT", 16),
    ("YDATE", 8),
    ("FILLER", 187),
)
ZERO_FILLED = {"SEQ", "AMT", "PSEQ", "TCOUNT", "TAMT", "PCLNO", "RCLNO"}
RORG = "9990250"  # the clearing house


def cno(reference: str) -> str:
    """The customer number a payment reference is sent as: the public tables' charset for CNO is
    letters and digits, so our documented rule (docs/formats.md §3) leaves a reference's dashes out."""
    return reference.replace("-", "")


def roc(day: dt.date) -> str:
    """ROC date, 8 digits: the ROC year (Gregorian − 1911) zero-filled to 4, then MMDD."""
    return f"{day.year - 1911:04d}{day.month:02d}{day.day:02d}"


def record(layout, values: dict) -> bytes:
    """One 250-byte record: each field from ``values`` (missing = blank), bytes taken as they are."""
    out = b""
    for name, length in layout:
        v = values.get(name, "")
        if isinstance(v, bytes):
            raw = v
        elif name in ZERO_FILLED and str(v) != "":
            raw = str(v).rjust(length, "0").encode("ascii")
        else:
            raw = str(v).encode("cp950").ljust(length, b" ")
        assert len(raw) == length, f"{name}: {raw!r} is {len(raw)} bytes, the layout says {length}"
        out += raw
    assert len(out) == 250
    return out


def file(
    cdata: str,
    tdate: dt.date,
    sorg: str,
    details: list[dict],
    *,
    ttime: str = "170000",
    ydate: dt.date | None = None,
    trailer: dict | None = None,
    header: dict | None = None,
) -> bytes:
    """A whole file: header, the details as given, a trailer counting and summing them; CRLF after
    every record. ``header`` / ``trailer`` override fields (for malformed cases)."""
    head = {
        "BOF": "BOF",
        "CDATA": cdata,
        "TDATE": roc(tdate),
        "TTIME": ttime,
        "SORG": sorg,
        "RORG": RORG,
        "VERNO": "V10",
    } | (header or {})
    tail = {
        "EOF": "EOF",
        "CDATA": cdata,
        "TDATE": roc(tdate),
        "SORG": sorg,
        "RORG": RORG,
        "TCOUNT": len(details),
        "TAMT": sum(int(d["AMT"]) for d in details),
        "YDATE": roc(ydate) if ydate else "",
    } | (trailer or {})
    records = [record(HEADER, head), *(record(DETAIL, d) for d in details), record(TRAILER, tail)]
    return b"".join(r + b"\r\n" for r in records)


def payment_detail(
    *,
    seq: int,
    txid: str,
    pbank: str,
    pclno: str,
    rbank: str,
    rclno: str,
    amount: int,
    cid: str,
    pid: str,
    cno: str,
    note: str = "",
    memo: str = "",
    txtype: str = "SC",
) -> dict:
    """A detail of an ACHP01 as the presenting company sends it (TYPE N)."""
    return {
        "TYPE": "N",
        "TXTYPE": txtype,
        "TXID": txid,
        "SEQ": seq,
        "PBANK": pbank,
        "PCLNO": pclno,
        "RBANK": rbank,
        "RCLNO": rclno,
        "AMT": amount,
        "SCHD": "B",
        "CID": cid,
        "PID": pid,
        "CNO": cno,
        "NOTE": note,
        "MEMO": memo,
        "CFEE": "00000",
    }


def return_of(p: dict, *, seq: int, rcode: str, pdate: dt.date) -> dict:
    """The ACHR01 detail answering ACHP01 detail ``p`` (as ``convertR01`` of the public app lays it
    out): TYPE R, the two sides swapped (PBANK/PCLNO ← the original RBANK/RCLNO, RBANK/RCLNO ← the
    original PBANK/PCLNO), the reason, the original date and sequence; NOTE and MEMO blank."""
    return {
        "TYPE": "R",
        "TXTYPE": p["TXTYPE"],
        "TXID": p["TXID"],
        "SEQ": seq,
        "PBANK": p["RBANK"],
        "PCLNO": p["RCLNO"],
        "RBANK": p["PBANK"],
        "RCLNO": p["PCLNO"],
        "AMT": p["AMT"],
        "RCODE": rcode,
        "SCHD": "B",
        "CID": p["CID"],
        "PID": p["PID"],
        "PDATE": roc(pdate),
        "PSEQ": p["SEQ"],
        "PSCHD": "B",
        "CNO": p["CNO"],
        "CFEE": "00000",
    }
