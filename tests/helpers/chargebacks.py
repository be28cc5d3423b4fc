"""Synthetic chargeback records for tests and the demo (made-up ARNs, masked test BINs)."""

from __future__ import annotations

from typing import Any


def record(i: int, **overrides: Any) -> dict[str, Any]:
    base = {
        "case_id": f"CB-{i:06d}",
        "original_reference": f"TX-{i:08d}",
        "arn": f"{74000000000000000000000 + i:023d}",
        "brand": "visa",
        "masked_card": "400000******0002",
        "reason_code": "13.1",
        "reason_text": "Merchandise/services not received",
        "stage": "chargeback",
        "amount_minor": 12345,
        "currency": "BRL",
        "transaction_date": "2026-10-01",
        "due_date": "2026-11-30",
        "merchant": "Loja Exemplo",
    }
    base.update(overrides)
    return base
