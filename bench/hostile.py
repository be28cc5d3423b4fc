"""Hostile input: what a PGP compression bomb costs the worker.

A return file signed by the bank and encrypted to us whose plaintext is 1 GiB of zeros (gpg's own
command line compresses it from /dev/zero: a file of about 1 MB). Side by side in one run, each in
a forked child for its own peak RSS (and that of the gpg process it starts):

* finflows: ``Keyring.decrypt_and_verify`` (gpg writes the plaintext to a file and stops at
  ``--max-output``, ``FINFLOWS_PGP_PLAINTEXT_MAX_BYTES``, 64 MiB by default): refused;
* the way it was done before (python-gnupg's ``decrypt`` of the bytes in memory), on a quarter of
  the bomb (256 MiB), since the whole one takes gigabytes.

Runs against the local stack's throwaway keys (``make bench``).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "plugins"), str(REPO)]

from bench.common import measure, write_rows  # noqa: E402
from devstack import secrets  # noqa: E402
from finflows import pgp  # noqa: E402
from tests.helpers.payments import gpg_bomb  # noqa: E402  (gpg's own command line makes it)

BANK = "mega"
GIB = 1 << 30


def bomb(size: int) -> bytes:
    return gpg_bomb(BANK, size)


def _ring():
    keys = secrets.pgp_keys()
    ring_cm = pgp.keyring()
    ring = ring_cm.__enter__()
    ring.add(keys["finflows"]["secret"], keys["finflows"]["fingerprint"], "finflows")
    ring.add(keys[BANK]["public"], keys[BANK]["fingerprint"], BANK)
    return ring_cm, ring, keys[BANK]["fingerprint"], keys["finflows"]["passphrase"]


def ours(data: bytes):
    def run():
        cm, ring, signer, passphrase = _ring()
        try:
            ring.decrypt_and_verify(data, signer, passphrase)
            outcome = "accepted (!)"
        except pgp.PgpError as e:
            outcome = f"refused ({str(e)[:40]}…)"
        finally:
            cm.__exit__(None, None, None)
        return outcome, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    return run


def in_memory(data: bytes):
    def run():
        cm, ring, _signer, passphrase = _ring()
        try:
            result = ring.gpg.decrypt(data, always_trust=True, passphrase=passphrase)
            outcome = f"{len(result.data) >> 20} MiB of plaintext held in memory"
        finally:
            cm.__exit__(None, None, None)
        return outcome, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    return run


def main() -> None:
    t0 = time.perf_counter()
    whole, quarter = bomb(GIB), bomb(GIB // 4)
    print(f"[bench] bombs made in {time.perf_counter() - t0:.1f}s: {len(whole):,} and {len(quarter):,} bytes")
    secs, rss, (outcome, gpg_rss) = measure(ours(whole))
    old_secs, old_rss, (old_outcome, _gpg) = measure(in_memory(quarter))
    rows = [
        {
            "figure": f"PGP compression bomb: {len(whole) / 1e6:.1f} MB file, 1 GiB plaintext (signed, encrypted)",
            "value": f"{outcome} in {secs:.1f} s (worker {rss:.0f} MB, gpg {gpg_rss:.0f} MB)",
            "baseline": f"python-gnupg decrypt in memory, a 256 MiB bomb: {old_outcome} in {old_secs:.1f} s, "
            f"worker {old_rss:.0f} MB",
            "ratio": f"{old_rss / rss:.1f}x less memory on a 4x larger bomb",
            "peak_rss": f"{rss:.0f} MB",
            "target": "refused; worker ≤ 200 MB whatever the file",
        }
    ]
    write_rows("hostile", rows)
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
