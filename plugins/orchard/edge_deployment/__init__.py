"""edge_deployment's Airflow-side steps: model checks, fleet provisioning and teardown, drift, report."""
