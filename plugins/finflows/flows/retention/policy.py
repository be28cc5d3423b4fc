"""The retention policy (``include/retention.yaml``, or ``FINFLOWS_RETENTION_FILE``), validated
when loaded: a bad entry names the kind and the field. No Airflow import here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from finflows.errors import FinflowsError
from finflows.settings import INCLUDE

DEFAULT_FILE = INCLUDE / "retention.yaml"
KINDS = ("payments", "card_facts", "health_checks", "tenure_event_bodies")


class PolicyError(FinflowsError, ValueError):
    pass


class Age(BaseModel):
    """How long a kind is kept: ``{years: N}`` or ``{days: N}`` (a year is 365 days)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    years: Annotated[int, Field(ge=1, le=100)] | None = None
    days: Annotated[int, Field(ge=1, le=36500)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Age:
        if (self.years is None) == (self.days is None):
            raise ValueError("give years or days, one of them")
        return self

    @property
    def span(self) -> dt.timedelta:
        if self.days is not None:
            return dt.timedelta(days=self.days)
        return dt.timedelta(days=365 * (self.years or 0))  # one of the two is set (_one)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    payments: Age
    card_facts: Age
    health_checks: Age
    tenure_event_bodies: Age

    @model_validator(mode="after")
    def _financial_records_for_five_years_at_least(self) -> Policy:
        for kind in ("payments", "card_facts"):
            if getattr(self, kind).span < dt.timedelta(days=5 * 365):
                raise ValueError(f"{kind}: financial records are kept five years at least")
        return self

    def age(self, kind: str) -> dt.timedelta:
        span: dt.timedelta = getattr(self, kind).span
        return span


def load(path: str | Path | None = None) -> Policy:
    import yaml

    from finflows import settings

    path = Path(path or settings.get("RETENTION_FILE"))
    try:
        return Policy.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise PolicyError(f"{path}: {problems}") from None
