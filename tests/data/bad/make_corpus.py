"""How tests/data/bad/ was made: one bad file per failure mode of every reader, from the synthetic
good inputs the tests use, each mutated at a known place; expected.json says what the reader must
report. Run once (`python tests/data/bad/make_corpus.py` from the repo root with plugins/ on the
path); the files are committed and tests/formats/test_bad_corpus.py only reads them.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

import datetime as dt  # noqa: E402

from tests.helpers import tch  # noqa: E402
from tests.helpers.chargebacks import record  # noqa: E402
from tests.helpers.statements import detail, statement_lines  # noqa: E402
from tests.helpers.tenure import event  # noqa: E402

CASH = "0001234567CIVICAPAY           DD1+000123.4501/02/202307"
expected: dict[str, dict] = {}


def put(path: str, data: bytes, **expect) -> None:
    (HERE / path).parent.mkdir(parents=True, exist_ok=True)
    (HERE / path).write_bytes(data)
    expected[path] = expect


def cash(*lines: str) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("ascii", "surrogateescape")


# ---- CivicaPay cash files (read_rows): FormatError naming line, field, value
put(
    "cashfile/CashFile20230201_short_line.dat",
    cash(CASH, CASH[:-1]),
    reader="cashfile",
    line=2,
    field="record",
    value=CASH[:-1],
)
put(
    "cashfile/CashFile20230202_bad_sign.dat",
    cash(CASH, CASH[:33] + "*000123.45" + CASH[43:]),
    reader="cashfile",
    line=2,
    field="amount",
    value="*000123.45",
)
put(
    "cashfile/CashFile20230203_bad_amount.dat",
    cash(CASH, CASH, CASH[:33] + "+0001X3.45" + CASH[43:]),
    reader="cashfile",
    line=3,
    field="amount",
    value="+0001X3.45",
)
put(
    "cashfile/CashFile20230204_31_february.dat",
    cash(CASH[:43] + "31/02/2023" + CASH[53:]),
    reader="cashfile",
    line=1,
    field="paid_on",
    value="31/02/2023",
)
put(
    "cashfile/CashFile20230205_letter_in_account.dat",
    cash(CASH, "00012345A7" + CASH[10:]),
    reader="cashfile",
    line=2,
    field="rent_account",
    value="00012345A7",
)
put("cashfile/CashFile20230206_empty.dat", b"", reader="cashfile", line=0, field="file", value="")
put(
    "cashfile/CashFile20230207_not_ascii.dat",
    CASH.encode() + b"\r\n" + b"\xff" + CASH[1:].encode() + b"\r\n",
    reader="cashfile",
    line=2,
    field="record",
)

# ---- acquirer card statements (read_statement)
good = statement_lines([detail(2), detail(3)])


def card(lines: list[str]) -> bytes:
    return "".join(line + "\r\n" for line in lines).encode("latin-1")


put(
    "card/EXTRATO_UNICA_1_20261120_1",
    card([good[0], good[1][:54] + "0000001O0.5" + good[1][65:], *good[2:]]),
    reader="card",
    line=2,
    field="gross",
    value="0000001O0.5",
)
put(
    "card/EXTRATO_UNICA_1_20261120_2",
    card([good[0], good[1][:29] + "20260231" + good[1][37:], *good[2:]]),
    reader="card",
    line=2,
    field="txn_date",
    value="20260231",
)
put(
    "card/EXTRATO_UNICA_1_20261120_3",
    card([good[0], good[1], good[2][:350], good[3]]),
    reader="card",
    line=3,
    field="record",
)
put(
    "card/EXTRATO_UNICA_1_20261120_4",
    card(good[:-1]),
    reader="card",
    line=3,
    field="record_type",
    reason="no A9 trailer",
)
# (an unmasked card number is refused too: tests/formats keep that case in memory, so no file here
# holds a full card number, not even a test one)

# ---- chargebacks (parse_file): the record index, field and value
rows = [record(0), record(1, amount_minor=-5)]
put(
    "chargeback/negative_amount.json",
    json.dumps(rows).encode(),
    reader="chargeback",
    line=1,
    field="amount_minor",
    value="-5",
)
put(
    "chargeback/e_notation_arn.json",
    json.dumps([record(0, arn="2.47E+22")]).encode(),
    reader="chargeback",
    line=0,
    field="arn",
    value="2.47E+22",
)
put("chargeback/not_a_list.json", b'{"records": 3}', reader="chargeback", field="file")

# ---- tenure events (parse_message): PoisonMessage naming the path
tid = str(uuid.UUID(int=1))


def fixed(ev: dict) -> dict:
    return ev | {"eventId": str(uuid.UUID(int=2))}  # the same bytes every time the corpus is made


put(
    "tenure/unknown_rent_group.json",
    json.dumps(fixed(event(tid, 1, rent_group="Parking"))).encode(),
    reader="tenure",
    reason="tenure.rentGroup",
)
put("tenure/not_json.json", b"{not json", reader="tenure", reason="not JSON")
put(
    "tenure/end_before_start.json",
    json.dumps(fixed(event(tid, 1, endDate="2026-01-01"))).encode(),
    reader="tenure",
    reason="before startDate",
)

# ---- bank files (read_ach): ACHP01/ACHR01 built from the public layout (tests/helpers/tch.py), then broken
DAY, SORG, OURS, ACCOUNT = dt.date(2026, 11, 20), "0172026", "0172026", "0100000000000001"
p01 = [
    tch.payment_detail(
        seq=i,
        txid="405",
        pbank=OURS,
        pclno=ACCOUNT,
        rbank="0081005",
        rclno=f"{i:012d}",
        amount=1000 * i,
        cid="12345675",
        pid=f"A{i:09d}",
        cno=f"P{i:04d}",
        note="王小明",
    )
    for i in (1, 2, 3)
]
P01 = tch.file("ACHP01", DAY, SORG, p01)
recs = P01.split(b"\r\n")[:-1]
R_DAY = dt.date(2026, 11, 23)
r01 = [tch.return_of(d, seq=n, rcode="04", pdate=DAY) for n, d in enumerate(p01, start=1)]


def achr01(details=r01, **kw) -> bytes:
    return tch.file("ACHR01", R_DAY, "0081005", details, ydate=dt.date(2026, 11, 20), **kw)


def ach(records: list[bytes]) -> bytes:
    return b"\r\n".join(records) + b"\r\n"


put("ach/detail_lost.txt", ach(recs[:2] + recs[3:]), reader="ach", line=4, field="total_count")
put("ach/short_record.txt", ach([recs[0], recs[1][:249], *recs[2:]]), reader="ach", line=2, field="record")
put(
    "ach/bad_amount.txt",
    ach([recs[0], recs[1][:60] + b"00000015X0" + recs[1][70:], *recs[2:]]),
    reader="ach",
    line=2,
    field="amount",
)
put(
    "ach/not_big5.txt",
    ach([recs[0], recs[1][:136] + b"\xff\xff" + recs[1][138:], *recs[2:]]),
    reader="ach",
    line=2,
    field="originator_note",
    value="<bytes FF FF A4 70 A9 FA>",
)
put("ach/bare_lf.txt", P01.replace(b"\r\n", b"\n"), reader="ach", reason="LF")
put("ach/empty.txt", b"", reader="ach", reason="empty")
put(
    "ach/unit_check_digit.txt",
    ach([recs[0], recs[1][:37] + b"0081006" + recs[1][44:], *recs[2:]]),
    reader="ach",
    line=2,
    field="receiving_bank",
    value="0081006",
    reason="check digit",
)
put(
    "ach/collection_code_in_payment.txt",
    tch.file("ACHP01", DAY, SORG, [p01[0] | {"TXID": "704"}]),
    reader="ach",
    line=2,
    field="txn_code",
    value="704",
    reason="a collection (SD)",
)
put(
    "ach/return_type_n.txt",
    achr01([r01[0], r01[1] | {"TYPE": "N"}, r01[2]]),
    reader="ach",
    line=3,
    field="record_type",
    value="N",
)
put(
    "ach/return_reason_unknown.txt",
    achr01([r01[0] | {"RCODE": "00"}, *r01[1:]]),
    reader="ach",
    line=2,
    field="return_reason",
    value="00",
    reason="not a return reason",
)
put(
    "ach/return_reason_blank.txt",
    achr01([r01[0] | {"RCODE": ""}, *r01[1:]]),
    reader="ach",
    line=2,
    field="return_reason",
    value="",
    reason="not a return reason",
)
put(
    "ach/return_pseq_not_digits.txt",
    achr01([r01[0], r01[1] | {"PSEQ": "0000000X"}, r01[2]]),
    reader="ach",
    line=3,
    field="original_seq",
    value="0000000X",
)
put(
    "ach/return_pdate_not_a_date.txt",
    achr01([*r01[:2], r01[2] | {"PDATE": "01151131"}]),
    reader="ach",
    line=4,
    field="original_date",
    value="01151131",
    reason="is not a date",
)
put(
    "ach/return_pdate_blank.txt",
    achr01([r01[0] | {"PDATE": ""}, *r01[1:]]),
    reader="ach",
    line=2,
    field="original_date",
    value="",
)
put(
    "ach/return_trailer_sorg.txt",
    achr01(trailer={"SORG": "8120012"}),
    reader="ach",
    line=5,
    field="sending_unit",
    value="8120012",
    reason="differs from the header",
)
put(
    "ach/return_without_ydate.txt",
    achr01(trailer={"YDATE": ""}),
    reader="ach",
    line=5,
    field="previous_business_day",
    reason="YDATE",
)

# ---- bank CSV variant (read_csv, cp950): header, column count, encoding
from finflows.formats.ach import CSV_COLUMNS  # noqa: E402

header = ",".join(CSV_COLUMNS)
row = "1,2026-11-23,405,0172026,0100000000000001,12345675,0081005,000000000012,1500,A000000001,王小明,貨款,P0001"
put(
    "ach_csv/wrong_header.csv",
    ("seq,date,amount\r\n" + row + "\r\n").encode("cp950"),
    reader="ach_csv",
    line=1,
    field="header",
    value="seq,date,amount",
)
put(
    "ach_csv/missing_column.csv",
    (header + "\r\n" + row + "\r\n" + row.rsplit(",", 1)[0] + "\r\n").encode("cp950"),
    reader="ach_csv",
    line=3,
    field="record",
)
put(
    "ach_csv/utf8_not_cp950.csv",
    (header + "\r\n" + row + "\r\n").encode("utf-8"),
    reader="ach_csv",
    line=0,
    field="file",
)

(HERE / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
print(f"{len(expected)} bad files")
