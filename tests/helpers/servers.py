"""The real servers of the local stack as a test sees their processes: found in /proc, frozen."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator

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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_sshd(argv: list[str], port: int, name: str) -> Iterator[subprocess.Popen]:
    """A second OpenSSH server (``argv`` from devstack's servers) started beside the stack's, its log
    in the stack's sshd folder as ``<name>.log``; gives its process once it answers with its banner
    (within two minutes), stopped with its sessions afterwards."""
    import socket
    import time

    from devstack import stack
    from devstack.services import servers

    with open(servers.data_root() / "sshd" / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 120
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    if s.recv(64).startswith(b"SSH-2.0-OpenSSH"):
                        break
                assert proc.poll() is None, f"the {name} sshd exited"
                assert time.monotonic() < deadline, f"the {name} sshd did not answer"
                time.sleep(0.2)
            yield proc
        finally:
            stack.kill_sessions(proc.pid)
            proc.terminate()
            proc.wait(timeout=60)
