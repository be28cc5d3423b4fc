"""SFTP server (asyncssh): key authentication only, a fixed host key, one chroot per user.

Usage: python -m devstack.services.sftp PORT ROOT HOST_KEY AUTHORIZED_KEYS

Fault injection (tests only): with ``FINFLOWS_SFTP_DIE_AFTER_BYTES=N`` in its environment the
server process exits abruptly (as if killed) once N bytes have been written to files, leaving a
partly written file behind, mid-upload.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncssh


def main() -> None:
    port, root, host_key, authorized = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    users = {p.name for p in root.iterdir() if p.is_dir()}

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True  # always require authentication

        def password_auth_supported(self) -> bool:
            return False

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            if username not in users:
                return False
            allowed = asyncssh.read_authorized_keys(authorized)
            return allowed.validate(key, username, "127.0.0.1") is not None

    die_after = int(os.environ.get("FINFLOWS_SFTP_DIE_AFTER_BYTES", "0")) or None
    written = [0]

    class ChrootSFTP(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel):
            user = chan.get_extra_info("username")
            super().__init__(chan, chroot=str(root / user))

        def write(self, file_obj, offset: int, data: bytes):
            result = super().write(file_obj, offset, data)
            written[0] += len(data)
            if die_after is not None and written[0] >= die_after:
                file_obj.flush()
                os._exit(137)  # no goodbye to the client: the connection just drops
            return result

    async def serve() -> None:
        await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[host_key],
            server_factory=Server,
            sftp_factory=ChrootSFTP,
            allow_scp=False,
            process_factory=None,
        )
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
