"""No secret of the local stack (or of the compose file) is a string that any other value contains.

Airflow masks every connection password and every sensitive extra (private_key, passphrase,
keyfile_dict, ...) wherever it appears in a task log or a form. A password that is a common word
(``local``) masked every ``.local/keys`` path to ``.***/keys``: the SFTP connections' Test failed
and saving the form would have stored the masked path. These tests mask the secrets as Airflow does
and require every other value to come back unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _masker(conns: dict[str, dict]):
    from airflow.sdk._shared.secrets_masker.secrets_masker import DEFAULT_SENSITIVE_FIELDS, SecretsMasker

    m = SecretsMasker()
    m.sensitive_variables_fields = list(DEFAULT_SENSITIVE_FIELDS)
    for c in conns.values():
        m.add_mask(c.get("password") or "")
        extra = c.get("extra") or {}
        m.add_mask(json.loads(extra) if isinstance(extra, str) else extra)
    return m


def _plain_values(conns: dict[str, dict], m) -> list[tuple[str, str, str]]:
    """(connection, field, value) of every value Airflow does not treat as a secret."""
    out = []
    for cid, c in conns.items():
        for field in ("host", "login", "schema"):
            if c.get(field):
                out.append((cid, field, str(c[field])))
        extra = c.get("extra") or {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
        out += [(cid, f"extra.{k}", str(v)) for k, v in extra.items() if not m.should_hide_value_for_key(k)]
    return out


def _unchanged(conns: dict[str, dict]) -> list[str]:
    m = _masker(conns)
    assert m.patterns, "no secret was registered: the test would prove nothing"
    return [f"{cid} {field}: {value!r} → {m.redact(value)!r}" for cid, field, value in _plain_values(conns, m)
            if m.redact(value) != value or "***" in value]  # fmt: skip


def test_no_local_secret_masks_another_value():
    conns = {
        k.removeprefix("AIRFLOW_CONN_").lower(): json.loads(v)
        for k, v in os.environ.items()
        if k.startswith("AIRFLOW_CONN_") and v.lstrip().startswith("{")
    }
    assert {"sftp_mega", "aws_finflows", "postgres_finance", "ftps_acquirer"} <= set(conns)
    assert _unchanged(conns) == []
    key_paths = [c["extra"]["key_file"] for cid, c in conns.items() if cid.startswith("sftp_")]
    assert key_paths and all(Path(p).is_file() for p in key_paths)  # the path a Test would open


def test_no_compose_secret_masks_another_value():
    conns = {}
    for line in (REPO / "docker" / "airflow.env").read_text().splitlines():
        if line.startswith("AIRFLOW_CONN_"):
            k, _, v = line.partition("=")
            conns[k.removeprefix("AIRFLOW_CONN_").lower()] = json.loads(v)
    assert _unchanged(conns) == []


def test_the_check_finds_a_common_word_secret():
    """The check itself: the old local AWS connection (password ``local``) is caught."""
    conns = {
        "aws": {"conn_type": "aws", "login": "local", "password": "local"},
        "sftp": {"conn_type": "sftp", "host": "127.0.0.1", "extra": {"key_file": "/repo/.local/keys/id"}},
    }
    found = _unchanged(conns)
    assert any("/repo/.***/keys/id" in f for f in found), found
