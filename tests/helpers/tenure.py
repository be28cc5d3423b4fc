"""Tenure events for tests: obviously fictional people and places."""

from __future__ import annotations

import copy
import json
import random
import uuid
from pathlib import Path
from typing import Any

EXAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "include" / "tenure" / "examples" / "tenure_created.json").read_text()
)


def payment_ref() -> str:
    return str(random.randrange(10**9, 10**10))


def event(tenure_id: str, version: int, *, rent_group: str = "HousingRevenue", **tenure: Any) -> dict:
    """The created example for another tenure and version, with tenure fields changed."""
    ev = copy.deepcopy(EXAMPLE)
    ev["eventId"] = str(uuid.uuid4())
    ev["eventType"] = "TenureCreatedEvent" if version == 1 else "TenureUpdatedEvent"
    ev["tenureId"] = ev["tenure"]["id"] = tenure_id
    ev["version"] = version
    ev["occurredAt"] = f"2026-11-{min(version, 28):02d}T10:00:00Z"
    ev["tenure"]["rentGroup"] = rent_group
    for key, value in tenure.items():
        if key in ("forename", "surname", "title", "dateOfBirth"):
            ev["tenure"]["tenant"][key] = value
        elif key in ("propertyRef", "shortAddress", "address", "postCode", "numBedrooms"):
            ev["tenure"]["property"][key] = value
        else:
            ev["tenure"][key] = value
    return ev
