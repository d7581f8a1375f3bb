# The images of docker-compose.yml, built with the classic builder (DOCKER_BUILDKIT=0) or BuildKit alike: no
# `# syntax=` line, whose front-end image BuildKit would fetch from Docker Hub.
#
#   airflow  every Airflow service: Python 3.12 with the Airflow virtualenv of requirements/lock/airflow-runtime.lock.txt
#            (requirements.txt, what MWAA installs, plus the Celery executor MWAA's own image has; no test or lint
#            tools) with the StatsD client MWAA's image has too, and dbt's own virtualenv, built by
#            scripts/build_dbt_venv.sh from requirements/lock/dbt.lock.txt as on MWAA.
#   demo     the demo source systems (partner API, ERP and file-drop seeding): airflow plus requirements/demo.txt.
#
# No project code inside: compose mounts dags/, dbt_project/, plugins/ and profiles/ (and tools/ into the demo
# containers only).
#
# A plain python base rather than apache/airflow: `uv pip sync` makes the environment the lock file and nothing else,
# where the official image brings its own set of providers and versions.
FROM python:3.12-slim-bookworm AS airflow

# Same uv as the Makefile's UV_VERSION.
ARG UV_VERSION=0.12.3
# Compose runs the containers as ${AIRFLOW_UID}:0 so files written to the mounted folders belong to the developer;
# everything the services write is group 0 and group-writable.
ARG AIRFLOW_UID=50000

# Bytecode is compiled once at build time (UV_COMPILE_BYTECODE): the containers never write it, and without it every
# task process and every DAG parse would compile Airflow and Cosmos from source again.
# pip, uv, requests and Python's ssl all read the system CA bundle, which holds the extra CAs below.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_NATIVE_TLS=true \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    AIRFLOW_HOME=/opt/airflow \
    PATH=/opt/venv/airflow/bin:$PATH

# Optional: the CA of a TLS-intercepting proxy, for the build and the containers (docker/extra-ca-certificates/).
COPY docker/extra-ca-certificates/ /usr/local/share/ca-certificates/medalflow-extra/
RUN find /usr/local/share/ca-certificates/medalflow-extra -type f ! -name '*.crt' -delete \
    && update-ca-certificates >/dev/null

RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /opt/airflow --no-create-home airflow

COPY requirements/lock/airflow-runtime.lock.txt /opt/medalflow/requirements/lock/airflow-runtime.lock.txt
RUN uv venv --python /usr/local/bin/python3.12 /opt/venv/airflow \
    && uv pip sync --python /opt/venv/airflow/bin/python /opt/medalflow/requirements/lock/airflow-runtime.lock.txt

# The StatsD client Airflow's metrics need (AIRFLOW__METRICS__STATSD_ON): MWAA's image has it, requirements.txt does
# not; the version of MWAA's constraints (requirements/constraints/airflow_constraints.txt; a unit test keeps it so).
ARG STATSD_VERSION=4.0.1
RUN uv pip install --python /opt/venv/airflow/bin/python "statsd==${STATSD_VERSION}"

COPY scripts/build_dbt_venv.sh /opt/medalflow/scripts/build_dbt_venv.sh
COPY requirements/lock/dbt.lock.txt /opt/medalflow/requirements/lock/dbt.lock.txt
RUN UV=uv PYTHON=/usr/local/bin/python3.12 bash /opt/medalflow/scripts/build_dbt_venv.sh \
        /opt/venv/dbt /opt/medalflow/requirements/lock/dbt.lock.txt

# Mount points, and the folders named volumes start from (a new volume copies the image's ownership).
RUN mkdir -p /opt/airflow/dags /opt/airflow/dbt_project /opt/airflow/plugins /opt/airflow/profiles \
        /opt/airflow/logs /opt/airflow/data /opt/airflow/secrets \
    && chown -R "${AIRFLOW_UID}:0" /opt/airflow \
    && chmod -R g+rwX /opt/airflow

# Any AIRFLOW_UID gets a writable home (dbt and uv write under it).
ENV HOME=/opt/airflow
USER ${AIRFLOW_UID}
WORKDIR /opt/airflow


FROM airflow AS demo
ARG AIRFLOW_UID=50000
USER 0
# The demo's packages at the versions of the full lock, which `make demo` uses.
COPY requirements/demo.txt /opt/medalflow/requirements/demo.txt
COPY requirements/lock/airflow.lock.txt /opt/medalflow/requirements/lock/airflow.lock.txt
RUN uv pip install --python /opt/venv/airflow/bin/python -r /opt/medalflow/requirements/demo.txt \
        -c /opt/medalflow/requirements/lock/airflow.lock.txt
USER ${AIRFLOW_UID}
