"""pose_training: DeepLabCut project zips in S3 -> GPU training on AWS Batch -> exported models in S3."""

from __future__ import annotations

from datetime import timedelta

# The s3:// Asset URI normalizer: imported here so that the DAG processor pre-imports it once
# (`parsing_pre_import_modules`) instead of every parse loading it when the first s3 Asset is built.
import airflow.providers.amazon.aws.assets.s3  # noqa: F401
from airflow.sdk import Asset, AssetWatcher, chain, dag, task, task_group

from orchard import naming
from orchard import params as form
from orchard.operators.batch import ReattachingBatchOperator
from orchard.pose_training import infra as pose_infra
from orchard.settings import load_settings
from orchard.task_defaults import DEFAULT_ARGS
from orchard.triggers.upload_queue import UploadQueueTrigger
from orchard.ui.links import with_report_link
from orchard.waits import polls_template

# Parse time: environment + defaults only (no Variable lookups at parse time, as Airflow's best practices
# ask). Only what the DAG's *structure* needs comes from it: the Asset watcher's queue URL (a trigger's
# arguments are fixed when the file is parsed) and the Assets' URIs. Every task reads the live settings
# (`load_settings()`: environment, then Airflow Variables, then defaults), and `ensure_event_path` fails
# the run when the live settings name another queue or bucket than the ones watched here.
PARSE_SETTINGS = load_settings(variables=False)
MAX_RUNTIME_MINUTES = 2880  # the max_runtime_minutes param's maximum: the train task's timeout covers it
WATCH_POLL_SECONDS = 10  # how often the triggerer polls the upload queue (long polls of 1 s in between)

DOC_MD = f"""
### DeepLabCut pose training on AWS Batch (GPU)

A scientist labels frames in the lab, zips the DeepLabCut project (`zip -r <name>.zip <project folder>`)
and uploads it under **`s3://{PARSE_SETTINGS.data_bucket}/{pose_infra.WATCHED_PREFIX}`**: S3 "Object
Created" → EventBridge rule `{pose_infra.UPLOAD_RULE}` → SQS `{pose_infra.UPLOAD_QUEUE}` → this DAG's Asset
watcher. Airflow folds the uploads queued since the last run into one run: **each upload of a run trains
on its own** (one mapped `project` group per upload). Or trigger by hand with **`project_uri`** = any
`s3://…/<name>.zip`.

**Before the first upload** the event path must exist: run `{pose_infra.INFRA_COMMAND}` once
(or trigger this DAG by hand once: its setup task creates it). Settings (buckets, account, region) are
read in each task (environment, then Airflow Variables `orchard_*`); the Asset watcher's queue is fixed
at parse time from the environment (`ORCHARD_REGION`, `ORCHARD_BATCH_JOB_ROLE_ARN`'s account,
`ORCHARD_DATA_BUCKET`), and a run whose live settings disagree fails at once, naming the variable to set.

1. `ensure_event_path` (setup): bucket → EventBridge, the rule and the queue, created or repaired (safe to
   repeat); fails if the live settings name another queue than the one the watcher polls.
2. `find_projects`: the run's uploads (every triggering Asset event) or `project_uri`; each gets its own
   job name and output prefix (`orchard.naming`, deterministic: a retry finds the same job).
3. `project.validate_project` (mapped, one per project): an upload's S3 object metadata (`epochs`,
   `batch-size`, `net-type`, `backbone-weights`, `train-crop`) overrides the param defaults, validated with
   the same Param schema as the trigger form (a bad value fails that project at once, naming the key).
   Reads the zip through ranged GETs (never whole) and refuses, before any GPU starts: not a zip, empty,
   over `max_zip_mb`, inflating past `max_unzipped_mb` or `max_zip_ratio`, absolute / `..` / link paths,
   no `config.yaml`, no bodyparts, no `labeled-data/`, labels DeepLabCut would not read (another scorer,
   no `video_sets` video, other bodyparts), labels naming frames that are not in the zip (DeepLabCut's rules,
   which the job applies again; zips from Windows and macOS tools are normalised). An upload already
   trained by another run (the same object version: a duplicate event) is skipped, naming that run.
4. `ensure_batch` (setup, once at least one project is valid): a managed EC2 compute environment on
   `gpu_family` (ON_DEMAND or SPOT with SPOT_PRICE_CAPACITY_OPTIMIZED), **minvCpus 0** (no instance
   between trainings), its queue and the job definition `{pose_infra.JOB_DEFINITION}` (1 vCPU, 10 GiB,
   1 GPU, retried only when EC2 reclaims a spot host). Reused when they exist; a changed definition
   gets a new revision.
5. `project.train` (mapped): the project's Batch job (image `orchard/pose-training`,
   `include/pose_training/`), deferrable, its CloudWatch log in the task log. A retry reattaches to the
   project's job instead of submitting another. `stop_training` (teardown) terminates the run's jobs if
   the run fails or is stopped.
6. `project.check_export` (mapped): the exported model, evaluation (with DeepLabCut's train/test plots)
   and manifest are in `s3://<artifacts_bucket>/pose_training/<run>/<project>/model/`; publishes the
   project's run report (metrics, learning curve, evaluation plots, console link, cost) and the Asset
   `pose_training.models`.

**Cost**: the GPU instance's hourly price for the job's run time (g4dn.xlarge ≈ $0.53/h on demand in
us-east-1; SPOT less); nothing between runs. **IAM**: `include/iam/pose_training.json` (Airflow's
role) and `include/iam/pose_training_job_role.json` (the job role). Docs: `docs/pipelines/pose_training.md`.
"""

UPLOADS = Asset(
    name="pose_training.uploads",
    uri=f"s3://{PARSE_SETTINGS.data_bucket}/{pose_infra.WATCHED_PREFIX}",
    watchers=[
        AssetWatcher(
            name="pose_training_upload_queue",
            # the provider's SqsSensorTrigger (what MessageQueueTrigger(scheme="sqs") runs), subclassed:
            # a vanished queue is logged naming it and the fix, instead of failing the watcher in a loop
            trigger=UploadQueueTrigger(
                fix=f"Recreate it: run `{pose_infra.INFRA_COMMAND}`, or trigger pose_training by hand once "
                "(its ensure_event_path task recreates it).",
                sqs_queue=pose_infra.upload_queue_url(PARSE_SETTINGS),
                aws_conn_id=PARSE_SETTINGS.aws_conn_id,
                region_name=PARSE_SETTINGS.region,
                max_messages=1,  # one upload per Asset event
                waiter_delay=WATCH_POLL_SECONDS,
            ),
        )
    ],
)
MODELS = Asset(name="pose_training.models", uri=f"s3://{PARSE_SETTINGS.artifacts_bucket}/pose_training/")


# The trigger form (orchard.params: strict patterns, empty = None for what is optional, sections).
PARAMS = form.with_defaults(
    "pose_training",
    {
        "project_uri": form.s3_object(
            None,
            suffixes=(".zip",),
            optional=True,
            example="s3://orchard-data/pose_training/uploads/mice.zip",
            description="Manual runs: the DeepLabCut project zip to train.",
            empty_means="train the uploads that started this run",
        ),
        "gpu_family": form.choice(
            "g4dn",
            pose_infra.GPU_FAMILIES,
            section=form.COMPUTE,
            description="EC2 GPU instance family of the compute environment.",
        ),
        "capacity": form.choice(
            "SPOT",
            pose_infra.CAPACITY_TYPES,
            section=form.COMPUTE,
            description="ON_DEMAND or SPOT (cheaper; a reclaimed host retries the job).",
        ),
        "max_vcpus": form.integer(
            16,
            minimum=4,
            maximum=256,
            section=form.COMPUTE,
            description="Compute environment ceiling (4 vCPUs per g*.xlarge instance).",
        ),
        "epochs": form.integer(200, maximum=5000, section=form.TRAINING, description="Training epochs."),
        "batch_size": form.integer(8, maximum=128, section=form.TRAINING, description="Images per batch."),
        "net_type": form.choice(
            "resnet_50",
            ["resnet_50", "resnet_101", "hrnet_w18", "hrnet_w32"],
            section=form.TRAINING,
            description="DeepLabCut network.",
        ),
        "backbone_weights": form.text(
            None,
            pattern=r"^(?:pretrained|none|/\S+\.pt)$",
            optional=True,
            section=form.TRAINING,
            example="none",
            description="pretrained, none (from scratch) or a .pt path inside the image.",
            empty_means="the image's default (pretrained)",
        ),
        "train_crop": form.text(
            None,
            pattern=r"^\d{2,4}x\d{2,4}$",
            optional=True,
            section=form.TRAINING,
            example="448x448",
            description="Training crop WIDTHxHEIGHT in pixels.",
            empty_means="DeepLabCut's 448x448",
        ),
        "max_runtime_minutes": form.integer(
            240,
            minimum=5,
            maximum=MAX_RUNTIME_MINUTES,
            section=form.COMPUTE,
            description="Batch job timeout, in minutes.",
        ),
        "max_zip_mb": form.integer(
            2048, maximum=51200, section=form.INPUTS, description="Largest project zip accepted, in MiB."
        ),
        "max_unzipped_mb": form.integer(
            8192,
            maximum=204800,
            section=form.INPUTS,
            description="Largest total the zip may inflate to (from its central "
            "directory, before anything starts), in MiB.",
        ),
        "max_zip_ratio": form.integer(
            100,
            minimum=2,
            maximum=10000,
            section=form.INPUTS,
            description="Largest compression ratio of any entry of 1 MiB or more "
            "(a zip bomb's is in the thousands).",
        ),
        "poll_seconds": form.poll_seconds(),
    },
)


@dag(
    schedule=UPLOADS,
    catchup=False,
    max_active_runs=4,
    description="DeepLabCut project zips uploaded to S3 -> GPU training on AWS Batch -> models in S3",
    tags=form.tags("pose_training", "batch", "s3", "eventbridge", "sqs"),
    doc_md=DOC_MD,
    default_args=DEFAULT_ARGS,
    user_defined_macros=naming.MACROS,
    params=PARAMS,
)
def pose_training():
    @task
    def ensure_event_path() -> dict:
        """The upload path (bucket → EventBridge → SQS), created or repaired; the watcher polls its queue."""
        return pose_infra.ensure_watched_event_path(PARSE_SETTINGS)

    @task
    def find_projects(params: dict, dag_run=None, triggering_asset_events=None) -> list[dict]:
        """Every project this run trains: each upload of its Asset events, or project_uri."""
        from orchard.pose_training import upload as pose_upload

        form.check(params)  # plain words for every bad param, before anything else
        return pose_upload.run_projects(params, dag_run, triggering_asset_events)

    @task
    def validate_project(project: dict, params: dict, dag=None, run_id=None) -> dict:
        """Whether this project can train at all, and with which (validated) settings."""
        from orchard.pose_training import upload as pose_upload

        return pose_upload.prepare_project(project, params, dag.params, run_id)

    @task(trigger_rule="one_success")  # once any project is valid; none valid: nothing billable is created
    def ensure_batch(params: dict) -> dict:
        return pose_infra.ensure_run_batch(params)

    @task
    def stop_training(projects: list[dict], params: dict) -> list:
        """Terminate the run's jobs that still queue or run (found by name, whatever failed)."""
        return pose_infra.stop_run_jobs(projects, params)

    @task(outlets=[MODELS])
    def check_export(run: dict, batch: dict, job_id: str, outlet_events=None, ti=None) -> dict:
        """The project's export checked and its report published; the models Asset names them."""
        from orchard.pose_training import report as pose_report
        from orchard.run_results import announce

        exported = pose_report.publish_export(run, batch, job_id)
        outlet_events[MODELS].extra = pose_report.models_extra(exported)
        ti.xcom_push(key="report_uri", value=exported["report_uri"])  # what `make demo` and ops look for
        announce(ti, exported["report_uri"], exported["metrics"], outlet_events=outlet_events, asset=MODELS)
        return exported

    @task_group
    def project(upload: dict):
        """One project of the run: validate, train, check its export. Each map index is independent."""
        valid = validate_project(upload)
        valid >> batch
        train = ReattachingBatchOperator(
            task_id="train",
            job_name=valid["job_name"],
            job_queue=batch["job_queue"],
            job_definition=batch["job_definition_arn"],
            container_overrides=valid["container_overrides"],
            input_uri=valid["project_uri"],  # named by the InputError of a job that refuses the project
            deferrable=True,
            awslogs_enabled=True,
            poll_interval="{{ params.poll_seconds }}",
            # polls that outlast the job's limit plus 30 min queued or starting (as execution_timeout)
            max_retries=polls_template("params.max_runtime_minutes * 60 + 1800"),
            execution_timeout=timedelta(minutes=MAX_RUNTIME_MINUTES + 30),
        )
        with_report_link(check_export(valid, batch, train.output))
        return train

    event_path = ensure_event_path()
    projects = find_projects()
    batch = ensure_batch()
    chain(event_path, projects)
    trains = project.expand(upload=projects)  # validation first: nothing is created for no valid project
    # on_failure_fail_dagrun: a teardown that failed to terminate a job fails the run (a GPU may be billing)
    trains >> stop_training(projects).as_teardown(setups=batch, on_failure_fail_dagrun=True)


pose_training()
