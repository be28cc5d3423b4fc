"""Erase one person's personal data on request, recorded with who asked and why:

    python -m finflows.flows.retention erase payee <payee id> --by <who asked> --reason <why>
    python -m finflows.flows.retention erase tenure <tenure id> --by <who asked> --reason <why>

Reads the finance database from the ``postgres_finance`` connection (or ``--dsn``). The id is not
printed or stored; ``ops.erasure`` keeps its sha256."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finflows.flows.retention")
    sub = parser.add_subparsers(dest="command", required=True)
    erase = sub.add_parser("erase", help="erase one payee's or one tenancy's personal data")
    erase.add_argument("kind", choices=("payee", "tenure"))
    erase.add_argument("subject", help="the payee id (national id) or the tenure id")
    erase.add_argument("--by", required=True, help="who asked (recorded)")
    erase.add_argument("--reason", required=True, help="why, e.g. the request's reference (recorded)")
    erase.add_argument("--dsn", help="the finance database; default: the postgres_finance connection")
    args = parser.parse_args(argv)

    import psycopg

    from finflows.flows.retention import retention

    dsn = args.dsn
    if not dsn:
        from finflows.task_support import finance_db

        dsn = finance_db().get_uri().replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            erase_one = retention.erase_payee if args.kind == "payee" else retention.erase_tenure
            n = erase_one(conn, args.subject, requested_by=args.by, reason=args.reason)
        except retention.ErasureRefused as e:
            sys.stderr.write(f"refused: {e}\n")
            return 1
    sys.stdout.write(f"erased: {n} row(s) changed; recorded in ops.erasure\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
