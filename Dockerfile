# orchard's Airflow image: the official Airflow 3.3.2 image plus orchard's pinned requirements.
# docker-compose.yaml builds it and mounts dags/ and plugins/ (not include/: job code is deployed apart,
# `make deploy`) into every Airflow service, so code edits show up without a rebuild.
FROM apache/airflow:3.3.2-python3.11

# Pip runs as the airflow user: the official image installs into that user's environment, never root's.
USER airflow
COPY --chown=airflow:root requirements.txt constraints.txt /opt/orchard/
# apache-airflow is pinned in requirements.txt to the base image's version, so pip never swaps it;
# constraints.txt pins every transitive dependency to the set orchard's tests ran with.
RUN pip install --no-cache-dir -r /opt/orchard/requirements.txt -c /opt/orchard/constraints.txt
