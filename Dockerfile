# The finflows image for production (Helm / KubernetesExecutor, or any executor): Airflow 3.3.2
# with the runtime requirements (requirements.txt: no test tool or local stand-in), the DAGs, the
# finflows package and its include/ files baked in.
#   docker build -t registry.example.org/finflows:$(git rev-parse --short HEAD) .
FROM apache/airflow:3.3.2-python3.11

USER root
# gnupg for python-gnupg (bank files); nothing else from Debian is needed at run time
RUN apt-get update -q && apt-get install -y -q --no-install-recommends gnupg && rm -rf /var/lib/apt/lists/*
USER airflow

# apache-airflow pinned beside the file, as the image's docs advise, so pip never changes the image's Airflow
ARG AIRFLOW_VERSION=3.3.2
COPY --chown=airflow:0 requirements.txt /opt/finflows/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/finflows/requirements.txt

# metadata only: the entry point that registers finflows as a provider (the pgp connection type);
# the code itself is plugins/ on PYTHONPATH
COPY --chown=airflow:0 pyproject.toml /opt/finflows/pyproject.toml
RUN pip install --no-cache-dir --no-deps /opt/finflows

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/plugins
