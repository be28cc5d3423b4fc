# The finflows image for production (Helm / KubernetesExecutor, or any executor): Airflow 3.3.2
# with the runtime requirements (requirements.txt: no test tool or local stand-in), the DAGs, the
# finflows package and its include/ files baked in.
#   docker build -t registry.example.org/finflows:$(git rev-parse --short HEAD) .
# The base image is pinned by tag; pin it by digest where you build (docker buildx imagetools
# inspect apache/airflow:3.3.2-python3.11 prints it): FROM apache/airflow:3.3.2-python3.11@sha256:…
FROM apache/airflow:3.3.2-python3.11

USER root
# gnupg for python-gnupg (bank files); nothing else from Debian is needed at run time
RUN apt-get update -q && apt-get install -y -q --no-install-recommends gnupg && rm -rf /var/lib/apt/lists/*
USER airflow

# every package pinned with its sha256 (`make lock`: uv pip compile --generate-hashes), apache-airflow
# among them at the image's version, so pip never changes the image's Airflow and installs nothing
# whose bytes differ from what the tests ran with
ARG AIRFLOW_VERSION=3.3.2
COPY --chown=airflow:0 requirements.txt /opt/finflows/requirements.txt
RUN grep -q "^apache-airflow==${AIRFLOW_VERSION} " /opt/finflows/requirements.txt \
    && pip install --no-cache-dir --require-hashes -r /opt/finflows/requirements.txt

# metadata only: the entry point that registers finflows as a provider (the pgp connection type);
# the code itself is plugins/ on PYTHONPATH
COPY --chown=airflow:0 pyproject.toml /opt/finflows/pyproject.toml
RUN pip install --no-cache-dir --no-deps /opt/finflows

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/plugins
