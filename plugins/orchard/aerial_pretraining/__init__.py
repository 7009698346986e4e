"""aerial_pretraining's Airflow-side steps (dags/aerial_pretraining.py wires them).

`instances`: what the trigger form offers and how many GPUs each has; `plan`: job names and the SageMaker
job requests; `inputs`: parameter checks before any job; `evaluation`: both probes' metrics side by side;
`promotion`: the mAP gate and the model registry; `report`: the run report (with `instance_metrics`, the
pretraining job's CloudWatch metrics).
Light at import time (no boto3, numpy or matplotlib): the DAG file imports `instances` at parse time.
"""

DAG_ID = "aerial_pretraining"
