"""auto_labeling's logic, called by the task adapters of dags/auto_labeling.py (imported inside tasks only).

- `plan`: the run's plan from valid input (names, URIs, counts), the frames split into shards.
- `frames`: the frames under their folder, each checked as the model's handler reads it.
- `endpoint`: the async endpoint's model, config and autoscaling, created and removed by their names.
- `predictions`: the endpoint's answers collected, then the pre-label manifest written.
- `labeling`: Ground Truth's prerequisites, the run's job stopped on failure, its output read back.
- `manifest`: the bounding-box manifest format (plain functions, no AWS).
- `report`: the run report.
- `s3_objects`: S3 objects by URI.

AWS clients come from `orchard.aws` (the run's Airflow connection), one per task.
"""
