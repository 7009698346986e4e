"""auto_labeling's Airflow-side steps (plan, endpoint stack, predictions, manifest, verified labels, report)."""
