"""Airflow-side code of the `fruit_features` DAG: input checks and AWS requests (plan), output checks, report.

Nothing heavy at import: the DAG file imports this package at parse time; boto3 clients, pyarrow and
matplotlib are imported or created inside the functions the tasks call.
"""
