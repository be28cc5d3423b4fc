"""The real servers of the local stack as a test sees their processes: found in /proc, frozen."""

from __future__ import annotations

import pytest


def fails_while_frozen(pids: list[int], call, errors=(TimeoutError, EOFError, OSError)) -> None:
    """``call`` fails, and within a bound (not for ever), while the server processes ``pids`` are
    stopped (SIGSTOP); they run again afterwards."""
    import os
    import signal
    import time

    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(errors):
            call()
        assert time.monotonic() - started < 600  # bounded (seconds here), not for ever
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def sshd_sessions(user: str) -> list[int]:
    """The sshd processes serving ``user``'s sessions, read from /proc (no procps on a slim machine)."""
    from pathlib import Path

    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith(f"sshd: {user}"):
                out.append(int(proc.name))
    return out
