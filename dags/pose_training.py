"""pose_training: a DeepLabCut project zip in S3 -> GPU training on AWS Batch -> exported model in S3."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import Asset, AssetWatcher, Param, chain, dag, task

from orchard import naming
from orchard.pose_training import infra as pose_infra
from orchard.operators.batch import ReattachingBatchOperator
from orchard.settings import load_settings

SETTINGS = load_settings(variables=False)  # env + defaults only: no Variable lookups at parse time
MAX_RUNTIME_MINUTES = 2880  # the max_runtime_minutes param's maximum: the train task's timeout covers it
WATCH_POLL_SECONDS = 10  # how often the triggerer polls the upload queue (long polls of 1 s in between)

DOC_MD = f"""
### DeepLabCut pose training on AWS Batch (GPU)

A scientist labels frames in the lab, zips the DeepLabCut project (`zip -r <name>.zip <project folder>`)
and uploads it under **`s3://{SETTINGS.data_bucket}/{pose_infra.WATCHED_PREFIX}`**: S3 "Object Created" →
EventBridge rule `{pose_infra.UPLOAD_RULE}` → SQS `{pose_infra.UPLOAD_QUEUE}` → this DAG's Asset watcher
starts a run for that key. Or trigger by hand with **`project_uri`** = any `s3://…/<name>.zip`.

1. `validate_project`: the uploaded key (from the triggering Asset event) or `project_uri`; an upload's
   S3 object metadata (`epochs`, `batch-size`, `net-type`, `backbone-weights`, `train-crop`) overrides the
   param defaults for upload-triggered runs. Reads the zip through ranged GETs (never whole) and refuses,
   before any GPU starts: not a zip, empty, over `max_zip_mb`, absolute / `..` / link paths, no `config.yaml`, no
   bodyparts, no `labeled-data/`, labels naming frames that are not in the zip.
3. `ensure_event_path`, `ensure_batch` (setup): the upload path, and a managed EC2 compute environment on
   `gpu_family` (ON_DEMAND or SPOT with SPOT_PRICE_CAPACITY_OPTIMIZED), **minvCpus 0** (no instance
   between trainings), its queue and the job definition `{pose_infra.JOB_DEFINITION}` (1 vCPU, 10 GiB,
   1 GPU, retried only when EC2 reclaims a spot host). Reused when they exist; a changed definition
   gets a new revision.
3. `train`: the Batch job (image `orchard/pose-training`, `include/pose_training/`), deferrable, its
   CloudWatch log in the task log. A retry of this task reattaches to the run's job instead of
   submitting another. `stop_training` (teardown) terminates it if the run fails or is stopped.
4. `check_export`: the exported model, evaluation and manifest are in
   `s3://{SETTINGS.artifacts_bucket}/pose_training/<run>/model/`; publishes the run report (metrics,
   learning curve, console link, cost) and the Asset `pose_training_models`.

**Cost**: the GPU instance's hourly price for the job's run time (g4dn.xlarge ≈ $0.53/h on demand in
us-east-1; SPOT less); nothing between runs. **IAM**: `include/iam/pose_training.json` (Airflow's
role) and `include/iam/pose_training_job_role.json` (the job role). Docs: `docs/pipelines/pose_training.md`.
"""

UPLOADS = Asset(
    name="pose_training_uploads",
    uri=f"s3://{SETTINGS.data_bucket}/{pose_infra.WATCHED_PREFIX}",
    watchers=[
        AssetWatcher(
            name="pose_training_upload_queue",
            trigger=MessageQueueTrigger(
                scheme="sqs",
                sqs_queue=pose_infra.upload_queue_url(SETTINGS),
                aws_conn_id=SETTINGS.aws_conn_id,
                region_name=SETTINGS.region,
                max_messages=1,  # one upload per Asset event
                waiter_delay=WATCH_POLL_SECONDS,
            ),
        )
    ],
)
MODELS = Asset(name="pose_training_models", uri=f"s3://{SETTINGS.artifacts_bucket}/pose_training/")

AWS_RETRIES = {"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": 2.0,
               "max_retry_delay": timedelta(minutes=10)}


@dag(
    schedule=UPLOADS,
    catchup=False,
    max_active_runs=4,
    tags=["pose", "deeplabcut", "batch", "gpu"],
    doc_md=DOC_MD,
    default_args={"owner": "ml-platform", **AWS_RETRIES},
    user_defined_macros=naming.MACROS,
    params={
        "project_uri": Param("", type="string", pattern=r"^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\.zip$",
                             description="Manual runs: the project zip. Empty for upload-triggered runs."),
        "gpu_family": Param("g4dn", type="string", enum=list(pose_infra.GPU_FAMILIES)),
        "capacity": Param("SPOT", type="string", enum=list(pose_infra.CAPACITY_TYPES)),
        "max_vcpus": Param(16, type="integer", minimum=4, maximum=256,
                           description="Compute environment ceiling (4 vCPUs per g*.xlarge instance)."),
        "epochs": Param(200, type="integer", minimum=1, maximum=5000),
        "batch_size": Param(8, type="integer", minimum=1, maximum=128),
        "net_type": Param("resnet_50", type="string", enum=["resnet_50", "resnet_101", "hrnet_w18", "hrnet_w32"]),
        "backbone_weights": Param("", type="string", pattern=r"^$|^pretrained$|^none$|^/.+\.pt$",
                                  description="Empty: the image's default (pretrained). none: from scratch."),
        "train_crop": Param("", type="string", pattern=r"^$|^\d{2,4}x\d{2,4}$",
                            description="Training crop WIDTHxHEIGHT; empty: DeepLabCut's 448x448."),
        "max_runtime_minutes": Param(240, type="integer", minimum=5, maximum=MAX_RUNTIME_MINUTES),
        "max_zip_mb": Param(2048, type="integer", minimum=1, maximum=51200),
        "poll_seconds": Param(30, type="integer", minimum=1, maximum=600,
                              description="How often the train task checks the Batch job."),
    },
)
def pose_training():
    @task
    def validate_project(params: dict, dag_run=None, triggering_asset_events=None) -> dict:
        """Which zip this run trains (its upload, or project_uri), and whether it can train at all."""
        from airflow.exceptions import AirflowFailException
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from orchard.pose_training import upload as pose_upload
        from orchard.pose_training.project import MiB, ProjectRejected, validate_project

        s3 = S3Hook(aws_conn_id=SETTINGS.aws_conn_id).get_conn()
        events = [event for events in (triggering_asset_events or {}).values() for event in events]
        try:
            run = pose_upload.resolve_run(s3, params, dag_run.dag_id, dag_run.run_id, events, SETTINGS)
            summary = validate_project(s3, run["bucket"], run["key"], params["max_zip_mb"] * MiB)
        except (pose_upload.NoProject, ProjectRejected) as error:
            raise AirflowFailException(str(error)) from None  # bad input: no retry, nothing started
        print(f"project OK: {summary}")
        overrides = pose_upload.container_overrides(run["bucket"], run["key"], run["output_uri"], run["training"])
        return {**run, "labeled_frames": summary.labeled_frames, "container_overrides": overrides}

    @task
    def ensure_batch(params: dict) -> dict:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        batch, ec2 = (AwsBaseHook(aws_conn_id=SETTINGS.aws_conn_id, client_type=name).conn for name in ("batch", "ec2"))
        spec = pose_infra.BatchSpec(
            gpu_family=params["gpu_family"],
            capacity=params["capacity"],
            max_vcpus=params["max_vcpus"],
            max_runtime_s=params["max_runtime_minutes"] * 60,
            data_bucket=SETTINGS.data_bucket,
        )
        return pose_infra.ensure_batch(batch, ec2, SETTINGS, spec, poll_s=params["poll_seconds"])

    @task
    def stop_training(batch: dict, dag_run=None) -> list:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        client = AwsBaseHook(aws_conn_id=SETTINGS.aws_conn_id, client_type="batch").conn
        name = naming.resource_name("batch_job", dag_run.dag_id, dag_run.run_id)
        stopped = pose_infra.stop_run_job(client, batch["job_queue"], name, "pose_training run ended (teardown)")
        print(f"terminated {stopped}" if stopped else f"no job of {name} left running")
        return stopped

    @task(outlets=[MODELS])
    def check_export(run: dict, batch: dict, job_id: str, outlet_events=None, ti=None) -> dict:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from orchard.pose_training.report import build_report, check_export as checked_manifest

        s3, client = (AwsBaseHook(aws_conn_id=SETTINGS.aws_conn_id, client_type=n).conn for n in ("s3", "batch"))
        bucket, _, prefix = run["output_uri"][len("s3://"):].partition("/")
        manifest = checked_manifest(s3, bucket, prefix)
        [job] = client.describe_jobs(jobs=[job_id])["jobs"]
        report = build_report(run, manifest, job, batch, SETTINGS.region)
        report_uri = report.publish(s3, SETTINGS.reports_bucket, SETTINGS.reports_prefix)
        outlet_events[MODELS].extra = {"model_uri": run["output_uri"], "report_uri": report_uri,
                                       "test_rmse": manifest["metrics"].get("test rmse")}
        ti.xcom_push(key="report_uri", value=report_uri)  # what `make demo` and ops look for
        return {"model_uri": run["output_uri"], "report_uri": report_uri, "metrics": manifest["metrics"]}

    run = validate_project()
    batch = ensure_batch()
    train = ReattachingBatchOperator(
        task_id="train",
        job_name="{{ aws_name('batch_job', dag.dag_id, run_id) }}",
        job_queue=batch["job_queue"],
        job_definition=batch["job_definition_arn"],
        container_overrides=run["container_overrides"],
        deferrable=True,
        awslogs_enabled=True,
        poll_interval="{{ params.poll_seconds }}",
        max_retries="{{ (params.max_runtime_minutes * 60) // params.poll_seconds + 20 }}",
        execution_timeout=timedelta(minutes=MAX_RUNTIME_MINUTES + 30),
    )
    chain(run, batch, train)  # validation first: nothing is created for a project that cannot train
    train >> stop_training(batch).as_teardown(setups=batch)
    check_export(run, batch, train.output)


pose_training()
