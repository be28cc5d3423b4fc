"""FTP servers (pyftpdlib): explicit-TLS FTPS and plain FTP, passive ports, one home per user.

Usage: python -m devstack.services.ftp MODE PORT ROOT PASSWORD_FILE [CERT KEY]
MODE is ``ftps`` (TLS required on control and data channels) or ``ftp``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

from devstack.config import FTP_PASSIVE_PORTS


def main() -> None:
    mode, port, root, pw_file = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    passwords = json.loads(pw_file.read_text())
    authorizer = DummyAuthorizer()
    for user, password in passwords.items():
        home = root / user
        home.mkdir(parents=True, exist_ok=True)
        # e: change dir, l: list, r: read, a: append, d: delete, f: rename, m: mkdir, w: write
        authorizer.add_user(user, password, str(home), perm="elradfmwMT")

    if mode == "ftps":
        handler = TLS_FTPHandler
        handler.certfile = sys.argv[5]
        handler.keyfile = sys.argv[6]
        handler.tls_control_required = True
        handler.tls_data_required = True
        passive = list(FTP_PASSIVE_PORTS)[: len(FTP_PASSIVE_PORTS) // 2]
    else:
        handler = FTPHandler
        passive = list(FTP_PASSIVE_PORTS)[len(FTP_PASSIVE_PORTS) // 2 :]
    handler.authorizer = authorizer
    handler.passive_ports = passive
    handler.masquerade_address = "127.0.0.1"
    handler.banner = f"finflows local {mode} ready"
    server = FTPServer(("127.0.0.1", port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
