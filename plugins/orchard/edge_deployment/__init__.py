"""edge_deployment's Airflow-side steps (dags/edge_deployment.py wires them).

`validation`: the checks before any billable resource; `plan`: the run's prefixes and the prepare job request;
`model_formats`: the model archive checks; `fleet`: the signing key and the IoT fleet; `monitor` and `drift`:
what the devices captured against the reference; `cleanup`: the teardown; `report`: the run report.
Light at import time: tasks import these inside their callables.
"""

DAG_ID = "edge_deployment"
