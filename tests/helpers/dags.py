"""Load one DAG file the way the DAG processor does, for dag.test() runs."""

from __future__ import annotations

from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"


def load_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)
