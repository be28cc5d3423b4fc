"""Retention and erasure of the finance database's records (the ``retention`` DAG and
``python -m finflows.flows.retention erase …``)."""
