"""The file servers counterparties run, from Debian's packages, as the local stack's SFTP and FTP(S).

* **OpenSSH ``sshd``** for the banks' and CivicaPay's SFTP: ``internal-sftp`` only, one chroot per
  account, keys only (no passwords, no PAM), its own config, host key and pid, on loopback. A
  second ``sshd`` beside any system one.
* **``vsftpd``** for the acquirer's statements (FTPS) and the card companies' inboxes (FTPS and
  plain FTP): explicit TLS required on the control and data channels, **TLS session reuse
  required** on data connections (vsftpd's default, ``require_ssl_reuse=YES``), chroot per account
  with vsftpd's default refusal of a writable chroot root (uploads go to a subdirectory), passive
  ports from configuration.

Each account is a system user (``ffsftp_mega``, ``ffftps_acquirer``, ``ffftp_visa``); the servers
authenticate them as production servers do (authorized keys; PAM with ``pam_unix`` for vsftpd).
Configuration files, keys and chroots are written under the stack's own folders; chroots live under
``/var/lib/finflows/<stack>/`` because sshd insists that every component of a chroot path is
root-owned and not writable by others (the repository may sit anywhere, ``/tmp`` included), and
``.local/sftp``/``.local/ftps``/``.local/ftp`` link there so tests and the demo see the files.

Needs root, as installing the packages does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from devstack.config import FTP_PASSIVE_PORTS, HOST, LOCAL, LOGS, RUN

SSHD = "/usr/sbin/sshd"
VSFTPD = "/usr/sbin/vsftpd"
REDIS = "/usr/bin/redis-server"
PAM_SERVICE = "finflows-ftp"
PREFIX = {"sftp": "ffsftp_", "ftps": "ffftps_", "ftp": "ffftp_"}
NOLOGIN = "/usr/sbin/nologin"


def login(kind: str, account: str) -> str:
    """The system user a counterparty account logs in as."""
    return PREFIX[kind] + account


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, stdin=kw.pop("stdin", None), **kw)


def ensure_installed() -> None:
    """openssh-server, vsftpd and redis-server (Celery's broker) from Debian's packages, installed
    when missing (the packages' own services not started)."""
    missing = [
        pkg
        for path, pkg in ((SSHD, "openssh-server"), (VSFTPD, "vsftpd"), (REDIS, "redis-server"))
        if not Path(path).exists()
    ]
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"{', '.join(missing)} missing: run `sudo apt-get install -y {' '.join(missing)}`")
    print(f"[stack] installing {', '.join(missing)} from Debian packages (apt-get)", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    policy = Path("/usr/sbin/policy-rc.d")  # keep the packages from starting system-wide daemons
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
        if subprocess.run(cmd, check=False, env=env, stdin=subprocess.DEVNULL, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdin=subprocess.DEVNULL)
            subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL)
    finally:
        if ours:
            policy.unlink(missing_ok=True)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise RuntimeError("the local sshd and vsftpd run as root (they chroot and switch to each account's user)")


def data_root() -> Path:
    """Where the chroots live: root-owned all the way down, one folder per stack (its .local path)."""
    stack_id = hashlib.sha256(str(LOCAL.resolve()).encode()).hexdigest()[:12]
    return Path("/var/lib/finflows") / stack_id


def _link(name: str) -> Path:
    """``.local/<name>`` → the real folder under ``data_root()``; returns the real folder."""
    real = data_root() / name
    real.mkdir(parents=True, exist_ok=True)
    for p in (Path("/var/lib/finflows"), data_root(), real):
        os.chown(p, 0, 0)
        p.chmod(0o755)
    link = LOCAL / name
    if link.is_symlink() and link.resolve() == real:
        return real
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():  # files of an earlier stack (the Python stand-ins): move them over
        for child in link.iterdir():
            dest = real / child.name
            if not dest.exists():
                shutil.move(str(child), dest)
        shutil.rmtree(link)
    link.symlink_to(real)
    return real


def _user(name: str, home: Path) -> tuple[int, int]:
    try:
        _run(["id", "-u", name])
    except subprocess.CalledProcessError:
        _run(["useradd", "--system", "--no-create-home", "--home-dir", str(home), "--shell", NOLOGIN, name])
    # '*': no password, but not locked ('!'), which sshd without PAM refuses even for key logins
    _run(["usermod", "--home", str(home), "--password", "*", name])
    import pwd

    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _own(path: Path, uid: int, gid: int, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    path.chmod(mode)


# ---------------------------------------------------------------------------- sshd
def sshd_command(port: int, accounts: dict[str, list[str]], host_key: Path, authorized: Path) -> list[str]:
    """Provision the SFTP accounts (``accounts``: name → writable subfolders) and return sshd's argv."""
    _require_root()
    ensure_installed()
    # sshd's StrictModes checks every directory above an authorized_keys file: a checkout under a
    # world-writable one (/tmp) would refuse every key. They live beside the chroots, root's all the way.
    conf_dir = data_root() / "sshd"
    keys_dir = conf_dir / "authorized_keys"
    _own(conf_dir, 0, 0, 0o755)
    _own(keys_dir, 0, 0, 0o755)
    key = conf_dir / "ssh_host_ed25519_key"
    shutil.copyfile(host_key, key)
    key.chmod(0o600)
    blocks = provision_sftp(accounts, authorized)
    config = conf_dir / "sshd_config"
    config.write_text(_sshd_config(port, key, keys_dir, [login("sftp", a) for a in accounts], "\n".join(blocks)))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    _run([SSHD, "-t", "-f", str(config)])  # refuse a bad config before starting
    return [SSHD, "-D", "-e", "-f", str(config)]


def provision_sftp(accounts: dict[str, list[str]], authorized: Path) -> list[str]:
    """Each SFTP account (name → writable subfolders): its system user, its chroot (root's, not
    writable by the account) and subfolders (the account's), the client key it accepts. Returns
    the sshd ``Match`` block of each."""
    root, keys_dir = _link("sftp"), data_root() / "sshd" / "authorized_keys"
    blocks = []
    for account, subfolders in accounts.items():
        user = login("sftp", account)
        home = root / account
        uid, gid = _user(user, home)
        _own(home, 0, 0, 0o755)
        for sub in subfolders:
            _own(home / sub, uid, gid, 0o755)
        keyfile = keys_dir / user
        shutil.copyfile(authorized, keyfile)
        keyfile.chmod(0o644)
        blocks.append(f"Match User {user}\n    ChrootDirectory {home}\n")
    return blocks


def bank_sshd_command(port: int, accounts: dict[str, list[str]], authorized: Path, config: Path) -> list[str]:
    """An SFTP server of a bank's own beside the stack's (a bank the stack was not started with):
    its accounts provisioned as the stack's are, the stack's host key; returns sshd's argv."""
    _require_root()
    conf_dir = data_root() / "sshd"
    blocks = provision_sftp(accounts, authorized)
    users = [login("sftp", a) for a in accounts]
    config.write_text(
        _sshd_config(port, conf_dir / "ssh_host_ed25519_key", conf_dir / "authorized_keys", users, "\n".join(blocks))
    )
    _run([SSHD, "-t", "-f", str(config)])
    return [SSHD, "-D", "-e", "-f", str(config)]


# What security guides (Mozilla's OpenSSH guideline, the CIS benchmark's strictest choice) leave a
# bank's server offering: the RFC 8731 key exchange, one AEAD cipher, ed25519 keys only.
HARDENED = (
    "KexAlgorithms curve25519-sha256\nCiphers chacha20-poly1305@openssh.com\n"
    "MACs hmac-sha2-256-etm@openssh.com\nHostKeyAlgorithms ssh-ed25519\nPubkeyAcceptedAlgorithms ssh-ed25519\n"
)


def _sshd_config(port: int, host_key: Path, keys_dir: Path, users: list[str], blocks: str, extra: str = "") -> str:
    return (
        "# written by devstack/services/servers.py: the local counterparties' SFTP server\n"
        f"Port {port}\nListenAddress {HOST}\nHostKey {host_key}\nPidFile none\n"
        f"AuthorizedKeysFile {keys_dir}/%u\nStrictModes yes\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"PermitRootLogin no\nAllowUsers {' '.join(users)}\n"
        "Subsystem sftp internal-sftp\nForceCommand internal-sftp\n"
        "AllowTcpForwarding no\nAllowAgentForwarding no\nX11Forwarding no\nPermitTTY no\n"
        f"LogLevel VERBOSE\n{extra}\n{blocks}"
    )


def hardened_sshd_command(
    port: int, accounts: dict[str, str], config: Path, *, host_key: Path | None = None, extra: str = ""
) -> list[str]:
    """A second sshd as a bank with a hardened OpenSSH runs it (``HARDENED``), serving the local
    stack's SFTP accounts (provisioned by :func:`sshd_command`, same chroots, keys and host key).
    ``accounts``: account → the sftp-server requests it refuses (``internal-sftp -P``; "" for none),
    as a bank's server that lets an upload account neither stat nor list is configured.
    ``host_key``: another host key (a bank that rotated its key); ``extra``: its settings instead of
    ``HARDENED`` when given."""
    _require_root()
    conf_dir = data_root() / "sshd"
    blocks = []
    for account, denied in accounts.items():
        force = f"    ForceCommand internal-sftp -P {denied}\n" if denied else ""
        blocks.append(
            f"Match User {login('sftp', account)}\n    ChrootDirectory {data_root() / 'sftp' / account}\n{force}"
        )
    config.write_text(
        _sshd_config(
            port,
            host_key or conf_dir / "ssh_host_ed25519_key",
            conf_dir / "authorized_keys",
            [login("sftp", a) for a in accounts],
            "\n".join(blocks),
            extra or HARDENED,
        )
    )
    _run([SSHD, "-t", "-f", str(config)])
    return [SSHD, "-D", "-e", "-f", str(config)]


# ---------------------------------------------------------------------------- vsftpd
def _pam() -> None:
    """A PAM service of our own for vsftpd: password check against the system users (Debian's
    ``vsftpd`` service also requires a login shell, which our accounts do not have)."""
    pam = Path("/etc/pam.d") / PAM_SERVICE
    text = "# finflows local FTP(S) accounts\nauth required pam_unix.so\naccount required pam_unix.so\n"
    if not pam.exists() or pam.read_text() != text:
        pam.write_text(text)


def vsftpd_command(
    kind: str,
    port: int,
    accounts: dict[str, list[str]],
    passwords: dict[str, str],
    cert: Path | None = None,
    key: Path | None = None,
) -> list[str]:
    """Provision the FTP(S) accounts (``accounts``: name → writable subfolders) and return vsftpd's argv.

    ``kind`` ``ftps``: explicit TLS required for logins and data, session reuse required; ``ftp``: plain."""
    _require_root()
    ensure_installed()
    _pam()
    root = _link(kind)
    conf_dir = RUN / f"vsftpd-{kind}"
    _own(conf_dir, 0, 0, 0o755)
    users = []
    for account, subfolders in accounts.items():
        user = login(kind, account)
        home = root / account
        uid, gid = _user(user, home)
        _run(["chpasswd"], input=f"{user}:{passwords[account]}\n")
        _own(home, 0, 0, 0o755)  # vsftpd refuses a chroot root the account can write to
        for sub in subfolders:
            _own(home / sub, uid, gid, 0o755)
        users.append(user)
    (conf_dir / "users").write_text("\n".join(users) + "\n")
    half = len(FTP_PASSIVE_PORTS) // 2
    passive = list(FTP_PASSIVE_PORTS)[:half] if kind == "ftps" else list(FTP_PASSIVE_PORTS)[half:]
    lines = [
        "# written by devstack/services/servers.py: the local counterparties' FTP(S) server",
        "listen=YES",
        "listen_ipv6=NO",
        f"listen_address={os.environ.get('FINFLOWS_LISTEN_ADDRESS', HOST)}",
        f"listen_port={port}",
        "background=NO",
        "anonymous_enable=NO",
        "local_enable=YES",
        "write_enable=YES",
        "local_umask=022",
        "chroot_local_user=YES",  # each account into its home, root/<account>
        f"pam_service_name={PAM_SERVICE}",
        "userlist_enable=YES",
        "userlist_deny=NO",
        f"userlist_file={conf_dir / 'users'}",
        "pasv_enable=YES",
        f"pasv_min_port={passive[0]}",
        f"pasv_max_port={passive[-1]}",
        f"pasv_address={HOST}",
        "connect_from_port_20=NO",
        "xferlog_enable=YES",
        f"vsftpd_log_file={LOGS / f'{kind}-transfers.log'}",
        "seccomp_sandbox=NO",  # the sandbox's syscall filter is refused inside some containers
    ]
    if kind == "ftps":
        lines += [
            "ssl_enable=YES",
            f"rsa_cert_file={cert}",
            f"rsa_private_key_file={key}",
            "force_local_logins_ssl=YES",
            "force_local_data_ssl=YES",
            "require_ssl_reuse=YES",  # vsftpd's default, stated: the data connection reuses the TLS session
            "ssl_ciphers=HIGH",  # with OpenSSL 3 the built-in default list leaves TLS 1.3 only
        ]
    config = conf_dir / "vsftpd.conf"
    config.write_text("\n".join(lines) + "\n")
    config.chmod(0o600)
    return [VSFTPD, str(config)]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (a server's sessions), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            out.append(child)
            todo.append(child)
    return out


def main() -> None:
    """``python -m devstack.services.servers ftps|ftp PORT PASSWORDS_JSON [CERT KEY]``: provision the
    accounts and run vsftpd in the foreground (the compose file's FTP(S) containers)."""
    import json
    import sys

    from devstack.config import ACCOUNT_FOLDERS

    kind, port, passwords = sys.argv[1], int(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
    cert, key = (Path(sys.argv[4]), Path(sys.argv[5])) if kind == "ftps" else (None, None)
    argv = vsftpd_command(kind, port, ACCOUNT_FOLDERS[kind], passwords, cert, key)
    os.execv(argv[0], argv)  # noqa: S606 (our own argv: vsftpd and its config)


if __name__ == "__main__":
    main()
