"""SMTP sink (aiosmtpd): accepts every message and stores it as ``N-<timestamp>.eml``.

Usage: python -m devstack.services.smtp PORT MAILDIR
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class StoreHandler:
    def __init__(self, maildir: Path):
        self.maildir = maildir
        existing = [int(p.name.split("-")[0]) for p in maildir.glob("*.eml") if p.name.split("-")[0].isdigit()]
        self.counter = itertools.count(max(existing, default=0) + 1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tmp = self.maildir / f".{n}.tmp"
        header = f"X-Envelope-From: {envelope.mail_from}\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        tmp.write_bytes(header.encode() + envelope.original_content)
        tmp.rename(self.maildir / f"{n:06d}-{int(time.time() * 1000)}.eml")  # readers never see half a file
        return "250 Message stored"


def main() -> None:
    port, maildir = int(sys.argv[1]), Path(sys.argv[2])
    maildir.mkdir(parents=True, exist_ok=True)
    controller = Controller(StoreHandler(maildir), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
