"""Tenure create/update events (docs/formats.md §5; schema and examples in ``include/tenure/``).

A message is one JSON event, either the raw event (SNS raw delivery) or an SNS envelope whose
``Message`` is the event. The tenure snapshot carries what the interim finance spreadsheet shows;
the payment reference is *not* in it: it comes from the finance accounts table.

``parse_message`` returns a ``TenureEvent`` or raises ``PoisonMessage`` with a reason that names
the field (personal values are never echoed into the reason: it reaches logs and the DLQ).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from finflows.errors import FinflowsError
from finflows.formats.fixedwidth import control_character
from finflows.pci import mask_pans

RENT_GROUPS = (
    "GarParkHRA",
    "HousingGenFund",
    "HousingRevenue",
    "LHMajorWorks",
    "LHServCharges",
    "TempAccGenFun",
    "TempAccomHRA",
    "TravelGenFund",
)
RentGroup = Literal[RENT_GROUPS]  # type: ignore[valid-type]  # the same eight names, as a type pydantic validates against
SHEET_HEADER = (
    "Payment Ref",
    "Tenure",
    "Start Date",
    "End Date",
    "Property Ref",
    "Short Address",
    "Address",
    "Post Code",
    "Num Bedrooms",
    "Title",
    "Forename",
    "Surname",
    "Date Of Birth",
)
# Fields whose values are personal: a rejection reason names them but never repeats their value.
PERSONAL = frozenset({"title", "forename", "surname", "dateOfBirth", "address", "shortAddress", "postCode"})


class PoisonMessage(FinflowsError, ValueError):
    """A message that can never be applied: it goes to the dead-letter queue with this reason."""


MAX_BODY = 256 * 1024  # characters: a tenure event is about 1 KB
MAX_VERSION = 2**31 - 1  # ifs.tenancy.version is an integer


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, v: Any) -> Any:
        """Text PostgreSQL can store (no NUL), a sheet cell can carry (no other control character:
        a line break or an escape would reach the finance spreadsheet) and in which no card number
        survives: a card number typed into free text is masked before it reaches the sheet, the
        database or a log."""
        if isinstance(v, str):
            if "\x00" in v:
                raise ValueError("contains a NUL character, which the finance database cannot store")
            if problem := control_character(v, "a sheet cell"):
                raise ValueError(problem)
            return mask_pans(v)
        return v


def _text(max_length: int, min_length: int = 1) -> Any:
    return Field(min_length=min_length, max_length=max_length)


class Tenant(_Model):
    title: str | None = Field(default=None, max_length=20)
    forename: str = _text(100)
    surname: str = _text(100)
    date_of_birth: dt.date | None = None


class Property(_Model):
    property_ref: str = Field(pattern=r"^[0-9A-Za-z]{1,12}$")
    short_address: str = _text(200)
    address: str = _text(400)
    post_code: str = _text(10)
    num_bedrooms: int | None = Field(default=None, ge=0, le=20)


class Tenure(_Model):
    id: UUID
    tenure_type: str = _text(60)
    start_date: dt.date
    end_date: dt.date | None = None
    rent_group: RentGroup
    property: Property
    tenant: Tenant

    @model_validator(mode="after")
    def _ends_after_start(self) -> Tenure:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"endDate {self.end_date} is before startDate {self.start_date}")
        return self


class TenureEvent(_Model):
    """One tenure created/updated event. ``version`` grows with every change of the tenure."""

    event_id: UUID
    event_type: Literal["TenureCreatedEvent", "TenureUpdatedEvent"]
    tenure_id: UUID
    version: int = Field(ge=1, le=MAX_VERSION)
    occurred_at: AwareDatetime
    tenure: Tenure

    @model_validator(mode="after")
    def _same_tenure(self) -> TenureEvent:
        if self.tenure.id != self.tenure_id:
            raise ValueError(f"tenure.id {self.tenure.id} differs from tenureId {self.tenure_id}")
        return self

    def sheet_row(self, payment_ref: str) -> list[str]:
        """Columns A:M as text (written RAW: nothing typed by a person is ever run as a formula)."""
        t, p, who = self.tenure, self.tenure.property, self.tenure.tenant

        def d(v: dt.date | None) -> str:
            return v.isoformat() if v else ""

        return [
            payment_ref,
            t.tenure_type,
            d(t.start_date),
            d(t.end_date),
            p.property_ref,
            p.short_address,
            p.address,
            p.post_code,
            "" if p.num_bedrooms is None else str(p.num_bedrooms),
            who.title or "",
            who.forename,
            who.surname,
            d(who.date_of_birth),
        ]


def _reason(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "event"
        got = mask_pans(str(err.get("input")))[:60].replace("\x00", "\\x00")
        shown = "" if (err["loc"] and str(err["loc"][-1]) in PERSONAL) else f" (got {got!r})"
        if err["type"] in ("missing", "model_type", "dict_type"):
            shown = ""
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


def parse_message(body: str) -> TenureEvent:
    if isinstance(body, str) and len(body) > MAX_BODY:
        raise PoisonMessage(f"the message is {len(body):,} characters, over the limit of {MAX_BODY:,}")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError) as e:
        raise PoisonMessage(f"not JSON: {e}") from None
    except RecursionError:
        raise PoisonMessage("not JSON we read: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise PoisonMessage(f"not JSON we read: {str(e)[:120]}") from None
    if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        return parse_message(data["Message"])  # an SNS envelope (subscription without raw delivery)
    if not isinstance(data, dict):
        raise PoisonMessage(f"not a JSON object but {type(data).__name__}")
    try:  # strict, as JSON: a number is not a string, a date is exactly YYYY-MM-DD
        return TenureEvent.model_validate_json(body, strict=True)
    except ValidationError as e:
        raise PoisonMessage(_reason(e)) from None


_IDS = frozenset({"eventId", "tenureId", "id"})  # identifiers: never masked (a uuid's digits are no card number)


def mask_body(body: str) -> str:
    """A message body as it may be kept (the tenure events parked in the archive bucket): a card
    number in any text of the event masked, as the reader masks it; identifiers, numbers and the
    rest kept. A body with nothing to mask is returned as it came, byte for byte; one that is not
    JSON (a poison message) is masked as a whole."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return mask_pans(body) if isinstance(body, str) else body

    def walk(v: Any, key: str | None = None) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str) and key not in _IDS:
            return mask_body(v) if key == "Message" else mask_pans(v)  # an SNS envelope's event, in turn
        return v

    masked = walk(data)
    return body if masked == data else json.dumps(masked, ensure_ascii=False)


def json_schema() -> dict[str, Any]:
    """The published event schema (include/tenure/event.schema.json is this, checked by a test)."""
    schema = TenureEvent.model_json_schema(by_alias=True)
    schema["$id"] = "https://finflows.example.org/schemas/tenure-event.json"
    schema["title"] = "Tenure created/updated event"
    return schema
