"""
# auto_labeling — pre-label camera frames on an async SageMaker endpoint, then verify them in Ground Truth

An ADAS team points this DAG at camera frames in S3 and a pretrained detector. The DAG deploys the model
on an **asynchronous endpoint** that scales with its backlog and down to zero, pre-labels every frame,
turns the predictions into a Ground Truth **bounding-box manifest**, sends it to a **verification (or
adjustment) labeling job**, reads the verified labels back and removes every billable resource whatever
happens (teardown tasks).

**Trigger** from the UI form. Required: `frames_prefix` (s3://… with .png/.jpg frames) and either
`model_data_uri` (a model.tar.gz with `code/inference.py`; `image_uri` defaults to AWS's PyTorch CPU inference
image, which runs it — the demo's is OpenCV's HOG pedestrian detector) or `existing_endpoint_name` (an async
endpoint you own: used as is, never deleted).
`stop_at_manifest` ends the run at the manifest (Ground Truth no longer takes new customers: label elsewhere).
`model_format` picks what the model is sent and asked for: `orchard` (each frame's own image type, JSON back)
or `jumpstart` (`application/x-image` in, `application/json;verbose` out).
Buckets (Assets, defaults) come from the settings: `ORCHARD_DATA_BUCKET`, `ORCHARD_ARTIFACTS_BUCKET`.

**Steps**: validate inputs (before anything billable, no retry; every frame is read as the model
would: none empty, each the image its suffix says; with labeling: Ground Truth in the region, the
workteam, the frames bucket's CORS rule) → the run's resource names (the cleanups' setup) → model →
endpoint config (`AsyncInferenceConfig`) →
endpoint → autoscaling (target tracking on `ApproximateBacklogSizePerInstance` + step policy on
`HasBacklogWithoutCapacity` to scale up from zero) → invoke, mapped over shards of frames, bounded
concurrency, deferred wait for outputs/failures (a frame never answered is recorded failed, not fatal) →
cleanup by name (scaling, endpoint, config, model; runs whatever failed, fails the run if it fails) →
manifest of the answered frames, label categories, worker template in S3 → labeling job (deferred, up to
30 days; stopped by a teardown if the run fails or is stopped) → verified dataset → report → sweep of
leftovers (last, whatever happened: the cleanups' removal again by name; fails naming what a cleanup left,
or the run's failed tasks).

**Outputs** (artifacts bucket, under `auto_labeling/<run>/`): `invocations/` (per-shard records: inference
ids, output locations, failures with reasons), `manifest/prelabels.manifest`, `manifest/label-categories.json`,
`manifest/worker-template.liquid`, `labeling/` (the job's output), `verified/verified.jsonl`; a run report
(XCom `report_uri`) and the Asset `s3://<artifacts>/auto_labeling/verified`.

**Cost**: endpoint instance-hours (instance type × lifetime; scale-to-zero stops billing when idle) plus
Ground Truth per labeled object; the report estimates both. **IAM**: `include/iam/auto_labeling.json`
(this DAG's tasks) and `include/iam/auto_labeling_execution_role.json` (the SageMaker execution role).
Docs: `docs/pipelines/auto_labeling.md`.
"""

from __future__ import annotations

from datetime import timedelta

# The s3:// Asset URI normalizer: imported here so that the DAG processor pre-imports it once
# (`parsing_pre_import_modules`) instead of every parse loading it when the first s3 Asset is built.
import airflow.providers.amazon.aws.assets.s3  # noqa: F401
from airflow.sdk import Asset, chain, dag, task

from orchard import naming
from orchard import params as form
from orchard.operators.async_endpoint import SageMakerAsyncEndpointOperator
from orchard.operators.async_inference import SageMakerAsyncInvokeOperator
from orchard.operators.labeling_job import SageMakerLabelingJobOperator
from orchard.settings import PLACEHOLDER_ACCOUNT, load_settings
from orchard.task_defaults import DEFAULT_ARGS
from orchard.ui.links import with_report_link

DAG_ID = "auto_labeling"
# S3 names are global: the buckets come from the settings (parse-time defaults; tasks read the live ones).
_SETTINGS = load_settings(variables=False)
VERIFIED = Asset(
    name="auto_labeling.verified", uri=f"s3://{_SETTINGS.artifacts_bucket}/auto_labeling/verified"
)
# A producer of frames (a capture pipeline, an upload job) that updates this Asset triggers a run on the
# default params; the UI form triggers one on any prefix.
FRAMES_PREFIX = f"s3://{_SETTINGS.data_bucket}/auto_labeling/frames/"
NEW_FRAMES = Asset(name="auto_labeling.frames", uri=FRAMES_PREFIX)
# InvokeEndpointAsync calls in flight per shard: each only queues a request, so a few dozen are cheap.
INVOKE_CONCURRENCY = 16
INSTANCE_TYPES = [
    "ml.m5.large",
    "ml.m5.xlarge",
    "ml.c5.xlarge",
    "ml.g4dn.xlarge",
    "ml.g5.xlarge",
    "ml.p3.2xlarge",
]
ENDPOINT_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"  # SageMaker CreateEndpoint EndpointName

# The trigger form (orchard.params: strict patterns, empty = None for what is optional, sections).
LABELING = "Labeling"
PARAMS = form.with_defaults(
    DAG_ID,
    {
        "frames_prefix": form.s3_folder(
            FRAMES_PREFIX,
            example=FRAMES_PREFIX,
            description="The camera frames (.png, .jpg, .jpeg) to label.",
        ),
        "max_frames": form.integer(
            5000, maximum=200000, section=form.INPUTS, description="Most frames one run labels."
        ),
        "frames_per_shard": form.integer(
            500, maximum=10000, section=form.INPUTS, description="Frames per mapped invoke task."
        ),
        "model_id": form.text(
            "opencv-hog-people-detector",
            max_length=128,
            section=form.MODEL,
            example="opencv-hog-people-detector",
            description="Name of the model (registry / JumpStart id) making the labels; the report names it.",
        ),
        "model_data_uri": form.s3_object(
            f"s3://{_SETTINGS.data_bucket}/auto_labeling/model/model.tar.gz",
            suffixes=(".tar.gz",),
            optional=True,
            section=form.MODEL,
            description="The model.tar.gz (with code/inference.py) to deploy.",
            empty_means="use existing_endpoint_name",
        ),
        # CreateModel ContainerDefinition.Image: "Maximum length of 255. Pattern: [\S]+" (SageMaker API reference,
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html).
        "image_uri": form.text(
            None,
            pattern=r"^\S{1,255}$",
            optional=True,
            section=form.MODEL,
            example="763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5.1-cpu-py311",
            description="Inference image.",
            empty_means="AWS's PyTorch CPU inference image (runs model.tar.gz's code/inference.py)",
        ),
        "existing_endpoint_name": form.name(
            None,
            pattern=ENDPOINT_NAME,
            optional=True,
            section=form.MODEL,
            example="my-async-detector",
            what="a SageMaker endpoint name (1-63 letters, digits, '-'; no spaces)",
            description="An async endpoint you own, used as is (never deleted) instead of deploying one.",
            empty_means="deploy model_data_uri on a new endpoint",
        ),
        "model_format": form.choice(
            "orchard",
            ["orchard", "jumpstart"],
            section=form.MODEL,
            description="orchard: each frame's own type in, JSON out (include/auto_labeling/inference.py); "
            "jumpstart: application/x-image in, application/json;verbose out (JumpStart object detectors).",
        ),
        "score_threshold": form.number(
            0.5,
            minimum=0,
            maximum=1,
            section=form.MODEL,
            description="Keep predictions scoring at least this (0 to 1).",
        ),
        "instance_type": form.instance_type(
            "ml.m5.xlarge", INSTANCE_TYPES, description="Endpoint instance type."
        ),
        "max_instances": form.integer(
            2, maximum=20, section=form.COMPUTE, description="Autoscaling maximum (the minimum is 0)."
        ),
        "max_concurrent_invocations_per_instance": form.integer(
            4,
            maximum=1000,
            section=form.COMPUTE,
            description="AsyncInferenceConfig's concurrent invocations per instance.",
        ),
        # "Box bounding labeling jobs (all): 10 labels"; "Each label category must be unique" (SageMaker API
        # reference, CreateLabelingJob LabelCategoryConfigS3Uri, https://docs.aws.amazon.com/sagemaker/latest/
        # APIReference/API_CreateLabelingJob.html).
        "label_categories": form.label_categories(
            ["pedestrian"],
            max_items=10,
            section=LABELING,
            description="The bounding-box label categories (1 to 10).",
        ),
        "labeling_mode": form.choice(
            "verify",
            ["verify", "adjust"],
            section=LABELING,
            description="verify: workers accept or reject; adjust: they fix the boxes.",
        ),
        "workteam_arn": form.arn(
            f"arn:aws:sagemaker:{_SETTINGS.region}:{PLACEHOLDER_ACCOUNT}:workteam/private-crowd/orchard-labelers",
            service="sagemaker",
            resource=r"workteam/\S+",
            section=LABELING,
            example=f"arn:aws:sagemaker:us-east-1:{PLACEHOLDER_ACCOUNT}:workteam/private-crowd/my-team",
            description="The Ground Truth work team.",
        ),
        "task_time_limit_s": form.integer(
            600, minimum=30, maximum=28800, section=LABELING, description="Seconds a worker has per task."
        ),
        "task_availability_s": form.integer(
            864000,
            minimum=60,
            maximum=2592000,
            section=LABELING,
            description="How long tasks wait for workers, in seconds (up to 30 days).",
        ),
        "stop_at_manifest": form.flag(
            False, section=LABELING, description="End at the manifest: no Ground Truth job."
        ),
        "poll_seconds": form.poll_seconds(),
    },
)
# What the schema cannot say, re-checked by the first task (orchard.params.check).
RULES = [form.one_of("model_data_uri", "existing_endpoint_name")]


@dag(
    dag_id=DAG_ID,
    schedule=[NEW_FRAMES],
    catchup=False,
    max_active_runs=4,
    description="Camera frames in S3 -> pre-labels from a SageMaker async endpoint -> Ground Truth review",
    tags=form.tags(DAG_ID, "sagemaker", "ground-truth", "s3"),
    params=PARAMS,
    doc_md=__doc__,
    user_defined_macros=naming.MACROS,
    default_args=DEFAULT_ARGS,
)
def auto_labeling():
    @task(multiple_outputs=True)
    def validate_inputs(params=None, run_id=None, dag=None) -> dict:
        """Everything that can be wrong, checked before anything billable starts. Returns the run's plan
        (names, URIs, counts, the shards to map `invoke` over), each field an XCom argument of its own for
        the operators below. Bad input raises orchard.errors.InputError: the task fails at once, no retry."""
        from orchard.auto_labeling.plan import plan_run

        form.check(params, RULES)  # plain words for every bad param, before anything else
        plan = plan_run(params, dag.dag_id, run_id)
        return {**plan, "plan": plan}

    checked = validate_inputs()
    plan = checked["plan"]

    @task
    def shards_to_invoke(plan: dict) -> list[dict]:
        """The plan's shards, as the return value `invoke` maps over (Airflow maps only over one)."""
        return plan["shards"]

    shards = shards_to_invoke(plan)

    @task
    def reserve_names(plan: dict) -> dict:
        """The names this run's billable resources get (orchard.naming: deterministic per run). The setup
        the cleanups can count on: it succeeds once the input is valid, so Airflow runs the cleanups even
        when every creating setup failed after its create call (a teardown none of whose setups succeeded
        is skipped). Creates nothing."""
        import json

        keys = ("model_name", "endpoint_config_name", "endpoint_name", "labeling_job_name")
        names = {key: plan[key] for key in keys if plan.get(key)}
        print("this run's resources, found by these names by the cleanups: " + json.dumps(names))
        return names

    # One billable resource per creating task: a task that fails after its create call leaves one
    # resource, which the cleanup below finds by its deterministic name.
    @task
    def create_model(plan: dict) -> str:
        from orchard.auto_labeling.endpoint import create_model

        return create_model(plan)

    @task
    def create_endpoint_config(plan: dict) -> str:
        """The endpoint config with AsyncInferenceConfig (S3 output and failure paths)."""
        from orchard.auto_labeling.endpoint import create_endpoint_config

        return create_endpoint_config(plan)

    deploy_endpoint = SageMakerAsyncEndpointOperator(
        task_id="deploy_endpoint",
        existing_endpoint_name="{{ params.existing_endpoint_name or '' }}",
        config={
            "EndpointName": "{{ aws_name('sagemaker_endpoint', dag.dag_id, run_id) }}",
            "EndpointConfigName": "{{ aws_name('sagemaker_endpoint_config', dag.dag_id, run_id) }}",
        },
        deferrable=True,
        check_interval="{{ params.poll_seconds }}",
        max_ingestion_time=3600,
        execution_timeout=timedelta(minutes=70),
    )

    @task
    def scale_endpoint(plan: dict) -> dict:
        from orchard.auto_labeling.endpoint import scale_endpoint

        return scale_endpoint(plan)

    invoke = SageMakerAsyncInvokeOperator.partial(
        task_id="invoke",
        endpoint_name=checked["endpoint_name"],
        max_concurrency=INVOKE_CONCURRENCY,
        content_type=checked["content_type"],
        accept=checked["accept"],
        waiter_delay="{{ params.poll_seconds }}",  # attempts: max_wait_s // poll_seconds, per run
        max_wait_s=7200,
        execution_timeout=timedelta(hours=3),
    ).expand(shard=shards)

    @task
    def collect_predictions(summaries: list[dict], plan: dict) -> dict:
        from orchard.auto_labeling.predictions import collect_predictions

        return collect_predictions(list(summaries), plan)

    @task
    def delete_endpoint(plan: dict) -> None:
        """Scaling policies and alarm, scalable target, endpoint, endpoint config, model: whatever of them
        exists under this run's names, whichever task failed (a failing cleanup fails the run)."""
        from orchard.auto_labeling.endpoint import remove_endpoint_resources

        remove_endpoint_resources(plan)

    @task
    def stop_labeling_job(plan: dict) -> str:
        """The run's Ground Truth job, stopped if it is still running: the run failed or was stopped."""
        from orchard.auto_labeling.labeling import stop_labeling_job

        return stop_labeling_job(plan)

    @task(trigger_rule="all_done")
    def sweep_leftovers(params=None, dag=None, run_id=None, ti=None) -> str:
        """Last task, behind the teardowns (orchard.sweep): their removal again by this run's names; fails
        naming what it removed and which teardown should have, or, nothing left, the run's failed tasks."""
        from orchard.auto_labeling.endpoint import sweep_run_resources
        from orchard.run_results import failure_causes
        from orchard.sweep import finish_run

        return finish_run(sweep_run_resources(params, dag.dag_id, run_id), failure_causes(ti))

    @task(multiple_outputs=True)  # each URI an XCom argument of its own for the labeling job
    def build_manifest(plan: dict, collected: dict) -> dict:
        from orchard.auto_labeling.predictions import build_manifest

        return build_manifest(plan, collected)

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def send_to_labeling(params=None) -> bool:
        if params["stop_at_manifest"]:
            print("stop_at_manifest: the run ends at the manifest, no labeling job")
        return not params["stop_at_manifest"]

    def label_frames(manifest) -> SageMakerLabelingJobOperator:
        """The Ground Truth job on the manifest build_manifest wrote (its URIs are XCom arguments)."""
        return SageMakerLabelingJobOperator(
            task_id="label",
            job_name="{{ aws_name('sagemaker_labeling_job', dag.dag_id, run_id) }}",
            manifest_uri=manifest["manifest_uri"],
            label_categories_uri=manifest["categories_uri"],
            ui_template_uri=manifest["template_uri"],
            output_uri=checked["labeling_output_uri"],
            label_attribute=checked["verified_attribute"],
            role_arn=checked["role_arn"],
            workteam_arn="{{ params.workteam_arn }}",
            mode="{{ params.labeling_mode }}",
            task_time_limit_s="{{ params.task_time_limit_s }}",
            task_availability_s="{{ params.task_availability_s }}",
            waiter_delay="{{ params.poll_seconds }}",  # attempts: (task_availability_s + 1 h) // poll_seconds
            deferrable=True,
            execution_timeout=timedelta(days=31),
        )

    @task
    def read_verified(plan: dict, job: dict) -> dict:
        from orchard.auto_labeling.labeling import read_verified

        return read_verified(plan, job)

    @task(trigger_rule="none_failed", outlets=[VERIFIED])
    def publish_report(
        plan: dict,
        collected: dict,
        manifest: dict,
        verified: dict | None = None,
        dag=None,
        run_id=None,
        ti=None,
        outlet_events=None,
    ) -> str:
        from orchard.auto_labeling.report import publish_report
        from orchard.run_results import announce

        published = publish_report(plan, collected, manifest, verified, dag.dag_id, run_id)
        uri = published["report_uri"]
        ti.xcom_push(key="report_uri", value=uri)
        n_failed = collected["failed"]
        failed = [f"{n_failed} frame(s) failed: {collected.get('failures_uri')}"] if n_failed else []
        # The metrics and cost in hand: no read-back of report.json (a settings read and a session)
        announce(
            ti,
            uri,
            published["metrics"],
            attention=failed,
            cost_usd=published["cost_usd"],
            outlet_events=outlet_events,
            asset=VERIFIED,
        )
        return uri

    names = reserve_names(plan)
    model = create_model(plan)
    config = create_endpoint_config(plan)
    scaling = scale_endpoint(plan)
    chain(names, model, config, deploy_endpoint, scaling, invoke)
    collected = collect_predictions(invoke.output, plan)
    # The cleanups are teardowns of reserve_names too (it creates nothing): a teardown runs when at least
    # one of its setups succeeded, so create_model failing after CreateModel (its own and every later
    # setup failed) still gets its model removed. Each runs once all its upstream tasks are done.
    cleanup = delete_endpoint(plan)
    setups = [names.operator, model.operator, config.operator, deploy_endpoint, scaling.operator]
    collected >> cleanup.as_teardown(setups=setups, on_failure_fail_dagrun=True)
    manifest = build_manifest(plan, collected)
    label = label_frames(manifest)
    gate = send_to_labeling()
    verified = read_verified(plan, label.output)
    chain(manifest, gate, label, verified)
    stop_labeling = stop_labeling_job(plan).as_teardown(setups=[names.operator], on_failure_fail_dagrun=True)
    label >> stop_labeling
    report = with_report_link(publish_report(plan, collected, manifest, verified))
    # Last, after everything (it is the run's only leaf, so it carries the run's state: orchard.sweep).
    [cleanup, stop_labeling, report] >> sweep_leftovers()


auto_labeling()
