"""aerial_pretraining's Airflow-side steps (dags/aerial_pretraining.py wires them).

`instances`: what the trigger form offers and how many GPUs each has; `requests`: the SageMaker job
requests; `inputs`: parameter checks before any job; `promotion`: the mAP gate; `report`: the run report.
Light at import time (no boto3, numpy or matplotlib): the DAG file imports `instances` at parse time.
"""

DAG_ID = "aerial_pretraining"
