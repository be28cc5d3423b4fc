"""finflows: the finance team's file exchanges on Apache Airflow 3.

Keep this package's top level import-light: DAG files import from it at parse time.
"""
