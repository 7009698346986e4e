"""pose_training's Airflow-side steps: project checks, Batch and event-path setup, run inputs, report."""
