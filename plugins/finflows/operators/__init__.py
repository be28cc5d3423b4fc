"""Operators of our own, usable from any DAG: ``from finflows.operators.pgp import PgpEncryptOperator``."""
