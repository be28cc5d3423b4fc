"""Tenure events and the sheet plan, without Airflow or the stack."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finflows.flows.tenure_sync.tenure import plan_sheet_writes, targets_of
from finflows.formats.tenure import RENT_GROUPS, SHEET_HEADER, PoisonMessage, json_schema, parse_message
from tests.helpers.tenure import event

INCLUDE = Path(__file__).resolve().parents[2] / "include" / "tenure"


def test_published_schema_is_the_models_schema():
    assert json.loads((INCLUDE / "event.schema.json").read_text()) == json_schema()


@pytest.mark.parametrize("name", ["tenure_created.json", "tenure_updated.json"])
def test_examples_parse(name):
    ev = parse_message((INCLUDE / "examples" / name).read_text())
    assert ev.tenure.rent_group == "HousingRevenue" and ev.tenure_id == ev.tenure.id


def test_sheet_row_is_columns_a_to_m_as_text():
    ev = parse_message((INCLUDE / "examples" / "tenure_updated.json").read_text())
    row = ev.sheet_row("0012345678")
    assert len(row) == len(SHEET_HEADER) == 13
    assert row == [
        "0012345678",
        "Secure",
        "2026-12-01",
        "2027-11-30",
        "00012345",
        "Flat 1, 1 Example Street",
        "Flat 1, 1 Example Street, Sampletown",
        "ZZ99 9ZZ",
        "2",
        "Mx",
        "Sample",
        "Tenant",
        "1990-01-01",
    ]


def test_an_sns_envelope_is_unwrapped():
    inner = event(str(uuid.uuid4()), 3)
    ev = parse_message(json.dumps({"Type": "Notification", "MessageId": "x", "Message": json.dumps(inner)}))
    assert ev.version == 3 and str(ev.event_id) == inner["eventId"]


def test_unknown_extra_fields_are_ignored():
    ev = event(str(uuid.uuid4()), 1)
    ev["tenure"]["somethingNew"] = {"a": 1}
    assert parse_message(json.dumps(ev)).version == 1


def _poison(body: str) -> str:
    with pytest.raises(PoisonMessage) as e:
        parse_message(body)
    return str(e.value)


def test_poison_messages_name_what_is_wrong():
    tid = str(uuid.uuid4())
    assert "not JSON" in _poison("{not json")
    assert "not a JSON object but list" in _poison("[1, 2]")
    reason = _poison(json.dumps(event(tid, 1, rent_group="Parking")))
    assert "tenure.rentGroup" in reason and "'Parking'" in reason
    missing = event(tid, 1)
    del missing["version"]
    assert "version: Field required" in _poison(json.dumps(missing))
    assert "version" in _poison(json.dumps({**event(tid, 1), "version": 0}))
    other = event(tid, 1)
    other["tenure"]["id"] = str(uuid.uuid4())
    assert "differs from tenureId" in _poison(json.dumps(other))
    assert "before startDate" in _poison(json.dumps(event(tid, 1, endDate="2026-01-01")))
    assert "occurredAt" in _poison(json.dumps({**event(tid, 1), "occurredAt": "2026-11-20T10:00:00"}))  # no zone


def test_a_rejection_never_repeats_a_personal_value():
    reason = _poison(json.dumps(event(str(uuid.uuid4()), 1, surname="", dateOfBirth="1990-02-31")))
    assert "tenure.tenant.surname" in reason and "tenure.tenant.dateOfBirth" in reason
    assert "1990-02-31" not in reason


def test_messages_that_broke_the_reader_are_poison_with_a_reason():
    """Found by a mutation fuzzer: each of these raised a plain Python error (the batch of messages
    was redelivered for ever) or passed the reader and failed in PostgreSQL."""
    tid = str(uuid.uuid4())
    assert "nested too deeply" in _poison("[" * 100_000 + "]" * 100_000)
    assert "over the limit" in _poison(json.dumps(event(tid, 1, address="x" * 300_000)))
    huge = json.dumps(event(tid, 1)).replace('"version": 1', '"version": ' + "9" * 5000)
    assert "not JSON we read" in _poison(huge) and "9" * 200 not in _poison(huge)
    assert "version" in _poison(json.dumps(event(tid, 2**31)))
    assert parse_message(json.dumps(event(tid, 2**31 - 1))).version == 2**31 - 1
    reason = _poison(json.dumps(event(tid, 1, tenureType="Secure\x00")))
    assert "tenure.tenureType" in reason and "NUL" in reason


def test_a_card_number_typed_into_free_text_never_reaches_the_sheet_or_a_reason():
    tid = str(uuid.uuid4())
    ev = parse_message(json.dumps(event(tid, 1, address="Flat 1, paid by 4111 1111 1111 1111")))
    row = ev.sheet_row("123456")
    assert "4111 11** **** 1111" in row[6] and "4111 1111 1111 1111" not in " ".join(row)
    reason = _poison(json.dumps(event(tid, 1, rent_group="4111111111111111")))
    assert "411111******1111" in reason and "4111111111111111" not in reason


def test_targets():
    assert targets_of("both") == ("sheet", "database")
    assert targets_of("sheet") == ("sheet",)
    with pytest.raises(ValueError, match="one of sheet, database, both"):
        targets_of("spreadsheet")


HEADER = list(SHEET_HEADER)


def _row(ref: str, tag: str = "x") -> list[str]:
    return [ref, tag] + [""] * 11


def test_plan_updates_in_place_appends_new_rows_together_and_moves_between_tabs():
    columns = {
        "HousingRevenue": ["Payment Ref", "1000000001", "1000000002"],
        "GarParkHRA": ["Payment Ref", "2000000001"],
    }
    plan = plan_sheet_writes(
        columns,
        [
            ("HousingRevenue", "1000000002", _row("1000000002", "updated")),
            ("HousingRevenue", "1000000003", _row("1000000003")),
            ("HousingRevenue", "2000000001", _row("2000000001", "moved")),
        ],
    )
    assert plan == [
        ("'GarParkHRA'!A2:M2", [[""] * 13]),
        ("'HousingRevenue'!A3:M5", [_row("1000000002", "updated"), _row("1000000003"), _row("2000000001", "moved")]),
    ]


def test_plan_refuses_a_missing_tab():
    with pytest.raises(KeyError, match="no tab 'HousingRevenue'"):
        plan_sheet_writes({"GarParkHRA": ["Payment Ref"]}, [("HousingRevenue", "1000000001", _row("1000000001"))])


def _apply(sheet: dict[str, dict[int, list[str]]], plan) -> None:
    for rng, values in plan:
        tab, cells = rng.split("!")
        first = int(cells.split(":")[0][1:])
        for i, v in enumerate(values):
            sheet[tab.strip("'")][first + i] = v


refs = st.sampled_from([f"10000000{i:02d}" for i in range(12)])


@settings(max_examples=200, deadline=None)
@given(
    existing=st.dictionaries(refs, st.sampled_from(RENT_GROUPS[:3]), max_size=8),
    updates=st.lists(st.tuples(st.sampled_from(RENT_GROUPS[:3]), refs, st.text(max_size=3)), max_size=10),
)
def test_plan_property_every_ref_once_in_its_tab_with_its_last_values(existing, updates):
    sheet = {t: {1: HEADER} for t in RENT_GROUPS[:3]}
    for ref, tab in existing.items():
        sheet[tab][len(sheet[tab]) + 1] = _row(ref, "old")
    columns = {t: [rows[i][0] for i in sorted(rows)] for t, rows in sheet.items()}
    _apply(sheet, plan_sheet_writes(columns, [(t, r, _row(r, v)) for t, r, v in updates]))

    want = {ref: (tab, _row(ref, "old")) for ref, tab in existing.items()}
    for tab, ref, v in updates:
        want[ref] = (tab, _row(ref, v))
    seen: dict[str, tuple[str, list[str]]] = {}
    for tab, rows in sheet.items():
        assert sorted(rows) == list(range(1, len(rows) + 1)), "no gaps: rows are contiguous"
        for i, row in rows.items():
            if i > 1 and row[0]:
                assert row[0] not in seen, f"{row[0]} twice"
                seen[row[0]] = (tab, row)
    assert seen == want
