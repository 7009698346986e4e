"""
### Edge deployment: Neo compile → signed edge package → IoT fleet → deploy → devices predict and capture

Seed 004. SageMaker Edge Manager (packaging jobs, device fleets, its agent) was retired on 2024-04-26;
this pipeline keeps its workflow on current services: a **SageMaker processing** job prepares the model
(the reference distribution for drift monitoring, and the int8 model when asked), **SageMaker Neo**
compiles it for the target device, orchard's **edge package** (compiled files + `manifest.json` signed with a **KMS**
asymmetric key) replaces the packaging job, an **IoT thing group** is the fleet, an **IoT job** deploys,
and orchard's agent (`include/edge_agent/`) runs on the devices: it authenticates with its certificate
through the IoT credentials provider, verifies and loads the package, predicts and captures inputs and
outputs to S3. A monitor compares what the devices saw and predicted with the reference captured at
packaging time.

**Inputs (trigger form):** `model_uri` (model.tar.gz in S3, e.g. another orchard pipeline's model),
`framework`, `input_shape` (`{"data": [1, 3, 224, 224]}`), `target_device` (a Neo TargetDevice or a
`linux_<arch>` platform), `quantization` (`none` | `int8`, with `calibration_uri` images), `model_name`,
`model_version`, `fleet_name`, `device_names`, capture settings, the rollout policy (`min_success_percent`
within `rollout_window_minutes`, `max_devices_per_minute`, `abort_failure_percent`), `rotate_certificates`,
`delete_fleet`. `calibration_uri` (S3 prefix
of .npy frames) is required: the drift reference (and int8 calibration) is computed on it.

**Approval:** with a real fleet (`simulated_devices` off) and `require_approval` on (the default),
`approve_rollout` waits for a person before `deploy` (UI: Required Actions; it shows the model, package,
thing group and device count). **Reject**, or no answer within `approval_timeout_hours` (the default is
Reject): nothing is deployed, the cleanup removes a fleet this run created, the report says why ("not deployed:
rejected by <user>" / "approval timed out") and the run ends green.

**Outputs:** `s3://<artifacts>/edge_deployment/packages/<model>/<version>/package.tar.gz` (+ manifest.json,
reference.json), captured data under `s3://<data>/edge_deployment/captures/<fleet>/<device>/...`, the drift
summary, the run report (`report_uri` XCom) and the Asset `s3://<artifacts>/edge_deployment/packages/`.

**Cleanup:** `cleanup` (a teardown: whatever failed) stops the run's prepare and Neo jobs, and when the run
failed or was refused cancels its IoT job and removes a fleet this run created (any orchard fleet with
`delete_fleet`). `sweep_leftovers`, the last task, runs that removal again by name: it fails naming what a
failed cleanup left, or the run's failed tasks (orchard.sweep).

**Secrets:** each device's private key exists only in its Secrets Manager provisioning bundle
(`orchard/edge/<fleet>/<device>/provisioning`), never in S3, XCom or a log.

**Cost:** the prepare job (ml.m5.large, a minute or two); Neo compilation has no charge; IoT Device Management jobs ≈ $0.0036 per device execution;
Secrets Manager $0.40 per secret-month; KMS key $1/month (one key, kept) + sign/verify requests;
S3 storage. The report estimates the run's share.

**IAM:** `include/iam/edge_deployment.json` (Airflow's role; `iam:PassRole` only to SageMaker and IoT), `include/iam/edge_deployment_execution_role.json` (the role the prepare and Neo jobs run as);
devices get `device_role_policy` (orchard/hooks/iot.py) through the role alias. Docs:
`docs/pipelines/edge_deployment.md`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.common.compat.sdk import AirflowException
from airflow.sdk import dag, task

from orchard import naming
from orchard import params as form
from orchard.edge_deployment import approval as rollout_approval
from orchard.operators.approval import OptionalApprovalOperator
from orchard.operators.edge_package import PACKAGE_PREFIX, PACKAGES_ASSET, EdgePackageOperator
from orchard.operators.iot import IotDeployOperator
from orchard.operators.neo import NeoCompilationOperator
from orchard.operators.sagemaker_processing import OrchardSageMakerProcessingOperator
from orchard.settings import load_settings
from orchard.task_defaults import DEFAULT_ARGS
from orchard.ui.links import with_report_link

DAG_ID = "edge_deployment"
SIGNING_KEY_ALIAS = "alias/orchard-edge-package-signing"
CAPTURE_PREFIX = "edge_deployment/captures"
TARGETS = [
    "linux_x86_64",
    "linux_arm64",
    "linux_arm_eabihf",
    "linux_arm64_nvidia",
    "linux_x86_64_nvidia",
    "ml_c4",
    "ml_c5",
    "ml_c6i",
    "ml_m4",
    "ml_m5",
    "ml_m6i",
    "ml_c6g",
    "ml_m6g",
    "rasp3b",
    "rasp4b",
    "jetson_nano",
    "jetson_xavier",
]
NAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$"
NAME_WORDS = "a name of 1-63 letters, digits, '_', '-', starting with a letter or digit"

# Defaults name the deployment's own buckets (settings, ORCHARD_DATA_BUCKET...), read without Variables.
DATA_BUCKET = load_settings(variables=False).data_bucket
# The trigger form (orchard.params: strict patterns, empty = None for what is optional, sections).
FLEET = "Fleet"
CAPTURE = "Capture"
PARAMS = form.with_defaults(
    DAG_ID,
    {
        "model_uri": form.s3_object(
            f"s3://{DATA_BUCKET}/edge_deployment/demo/model/model.tar.gz",
            suffixes=(".tar.gz", ".tgz"),
            section=form.MODEL,
            description="The model.tar.gz to compile (e.g. another orchard pipeline's).",
        ),
        "framework": form.choice(
            "ONNX",
            ["ONNX", "PYTORCH", "TFLITE", "KERAS", "DARKNET"],
            section=form.MODEL,
            description="The model's framework (Neo's InputConfig.Framework).",
        ),
        "input_shape": form.text(
            '{"data": [1, 3, 32, 32]}',
            section=form.MODEL,
            example='{"data": [1, 3, 224, 224]}',
            description='JSON: {"input name": [shape]} (Neo\'s DataInputConfig).',
        ),
        "target_device": form.choice(
            "linux_x86_64",
            TARGETS,
            section=form.MODEL,
            description="Neo TargetDevice, or linux_<arch>[_<accelerator>] (TargetPlatform).",
        ),
        "quantization": form.choice(
            "none",
            ["none", "int8"],
            section=form.MODEL,
            description="int8 quantizes with calibration_uri's frames.",
        ),
        "calibration_uri": form.s3_folder(
            f"s3://{DATA_BUCKET}/edge_deployment/demo/images/calibration/",
            section=form.MODEL,
            description="Folder of .npy frames: the drift reference and int8 calibration.",
        ),
        "model_name": form.name(
            "fruit-colour",
            pattern=NAME_PATTERN,
            section=form.MODEL,
            example="fruit-colour",
            description="The edge package's model name.",
            what=NAME_WORDS,
        ),
        "model_version": form.name(
            "1.0.0",
            pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$",
            section=form.MODEL,
            example="1.0.0",
            description="The edge package's version.",
        ),
        "force_repackage": form.flag(
            False, section=form.MODEL, description="Replace an existing package version."
        ),
        "compile_max_runtime_s": form.integer(
            900,
            minimum=60,
            maximum=86400,
            section=form.MODEL,
            description="Neo compilation StoppingCondition, in seconds.",
        ),
        "fleet_name": form.name(
            "edge-demo-fleet",
            pattern=NAME_PATTERN,
            section=FLEET,
            example="edge-demo-fleet",
            description="The IoT thing group of the devices.",
            what=NAME_WORDS,
        ),
        "device_names": form.string_list(
            ["edge-demo-camera-1", "edge-demo-camera-2"],
            item_pattern=r"^[a-zA-Z0-9:_-]{1,128}$",
            section=FLEET,
            example="edge-demo-camera-1",
            description="IoT thing names of the fleet's devices.",
            what="an IoT thing name (1-128 letters, digits, ':', '_', '-')",
        ),
        "simulated_devices": form.flag(
            False,
            section=FLEET,
            description="Mark things simulated=true: the local sandbox runs the agent for them (make up: on).",
        ),
        "camera_images_uri": form.s3_folder(
            None,
            optional=True,
            section=FLEET,
            description="Simulated devices' camera frames: <folder><device index>/*.npy.",
            empty_means="no simulated cameras (required when simulated_devices is on)",
        ),
        "rotate_certificates": form.flag(
            False,
            section=FLEET,
            description="Give each orchard device a new certificate, revoke its old one.",
        ),
        "delete_fleet": form.flag(
            False,
            section=FLEET,
            description="Delete the fleet orchard created (things, certificates, secrets, group, policy, role) "
            "after this run; a fleet orchard did not create is never touched. Off: devices keep their identity "
            "across runs.",
        ),
        "capture_buffer_size": form.integer(
            30, maximum=10000, section=CAPTURE, description="Captures a device buffers."
        ),
        "capture_batch_size": form.integer(
            10, maximum=1000, section=CAPTURE, description="Captures per upload."
        ),
        "capture_push_period_seconds": form.integer(
            4, maximum=3600, section=CAPTURE, description="Seconds between capture uploads."
        ),
        "device_timeout_minutes": form.integer(
            30,
            maximum=10080,
            section=form.ROLLOUT,
            description="IoT timeoutConfig: minutes a device has once IN_PROGRESS.",
        ),
        "rollout_window_minutes": form.integer(
            60,
            maximum=10080,
            section=form.ROLLOUT,
            description="Judge the rollout this long after the job starts (offline devices stay QUEUED on AWS, "
            "never timing out).",
        ),
        "min_success_percent": form.number(
            100,
            minimum=1,
            maximum=100,
            section=form.ROLLOUT,
            description="Share of the fleet that must have SUCCEEDED within the window (1 to 100).",
        ),
        "max_devices_per_minute": form.integer(
            100,
            maximum=1000,
            section=form.ROLLOUT,
            description="IoT jobExecutionsRolloutConfig.maximumPerMinute.",
        ),
        "abort_failure_percent": form.number(
            50,
            minimum=0,
            maximum=100,
            section=form.ROLLOUT,
            description="IoT abortConfig: cancel the job when this share of the devices that got it failed "
            "(0: never; 0 to 100).",
        ),
        **form.approval("the rollout to a real fleet (simulated devices never wait)"),
        "poll_seconds": form.integer(
            30, maximum=600, section=form.ADVANCED, description="Wait poll delay (s)."
        ),
    },
)
# What the schema cannot say, re-checked by the first task (orchard.params.check).
RULES = [
    form.requires(
        "camera_images_uri",
        when="simulated_devices",
        because="the simulated cameras read their frames from it",
    )
]


@dag(
    dag_id=DAG_ID,
    schedule=None,
    catchup=False,
    description="Neo-compiled, KMS-signed edge package -> IoT fleet rollout -> devices predict and capture",
    tags=form.tags(DAG_ID, "sagemaker", "neo", "iot", "kms", "secretsmanager"),
    default_args=DEFAULT_ARGS,
    user_defined_macros=naming.MACROS,
    doc_md=__doc__,
    max_active_runs=1,
    params=PARAMS,
)
def edge_deployment():
    @task(retries=0)
    def validate_model(params: dict, dag_run=None) -> dict:
        """Refuse a model that is not there, not the declared framework or not of the declared shape."""
        from orchard.edge_deployment.validation import validate

        form.check(params, RULES)  # plain words for every bad param, before anything else
        return validate(params, dag_run.run_id)

    @task
    def ensure_signing_key() -> str:
        from orchard.edge_deployment.fleet import signing_key

        return signing_key(SIGNING_KEY_ALIAS)

    checked = validate_model()
    key_arn = ensure_signing_key()

    prepare = OrchardSageMakerProcessingOperator(
        task_id="prepare",
        config=checked["processing_config"],
        deferrable=True,
        check_interval="{{ params.poll_seconds }}",  # polls sized from the job's MaxRuntimeInSeconds (30 min)
        execution_timeout=timedelta(hours=2),
    )

    compile_model = NeoCompilationOperator(
        task_id="compile",
        job_name="{{ aws_name('sagemaker_compilation_job', dag.dag_id, run_id) }}",
        role_arn=checked["role_arn"],
        model_uri=checked["prepared_model_uri"],
        framework="{{ params.framework }}",
        data_input_config=checked["input_shape"],
        target="{{ params.target_device }}",
        output_uri=checked["compile_output_uri"],
        max_runtime_s="{{ params.compile_max_runtime_s }}",
        deferrable=True,
        waiter_delay="{{ params.poll_seconds }}",
        execution_timeout=timedelta(hours=25),
    )

    package = EdgePackageOperator(
        task_id="package",
        compiled_uri=compile_model.output["model_artifacts"],
        model_name="{{ params.model_name }}",
        model_version="{{ params.model_version }}",
        framework="{{ params.framework }}",
        input_shape=checked["input_shape"],
        target="{{ params.target_device }}",
        extra_files=checked["prepared_reference_uri"],
        bucket=checked["artifacts_bucket"],
        prefix=PACKAGE_PREFIX,
        signing_key=key_arn,
        force="{{ params.force_repackage }}",
        source={"model_uri": "{{ params.model_uri }}", "compilation_job": compile_model.output["job_name"]},
    )

    @task
    def ensure_fleet(signing_key_arn: str, params: dict, dag_run=None) -> dict:
        """IoT thing type, thing group (the fleet), things, certificates, policy, role alias + role."""
        from orchard.edge_deployment.fleet import provision_fleet

        return provision_fleet(params, signing_key_arn, PACKAGE_PREFIX, CAPTURE_PREFIX, dag_run.run_id)

    fleet = ensure_fleet(key_arn)

    @task(multiple_outputs=True)
    def rollout_request(package_info: dict, fleet_info: dict, params: dict) -> dict:
        from orchard.edge_deployment.approval import request

        return request(package_info, fleet_info, params)

    asked = rollout_request(package.output, fleet)
    approval = OptionalApprovalOperator(
        task_id="approve_rollout",
        subject=asked["subject"],
        body=asked["body"],
        required=rollout_approval.REQUIRED,
        not_required_because=rollout_approval.NOT_REQUIRED_BECAUSE,
    )

    deploy = IotDeployOperator(
        task_id="deploy",
        job_id="{{ aws_name('iot_job', dag.dag_id, run_id) }}",
        thing_group_arn=fleet["thing_group_arn"],
        package=package.output,
        device_timeout_minutes="{{ params.device_timeout_minutes }}",
        rollout_window_minutes="{{ params.rollout_window_minutes }}",
        min_success_percent="{{ params.min_success_percent }}",
        max_per_minute="{{ params.max_devices_per_minute }}",
        abort_failure_percent="{{ params.abort_failure_percent }}",
        deferrable=True,
        waiter_delay="{{ params.poll_seconds }}",
        execution_timeout=timedelta(days=8),
    )

    @task
    def monitor(package_info: dict, deployment: dict, params: dict, dag_run=None) -> dict:
        """Compare captured inputs and predictions with the packaging-time reference; write drift.json."""
        from orchard.edge_deployment.monitor import monitor_drift

        return monitor_drift(package_info, deployment, params, CAPTURE_PREFIX, DAG_ID, dag_run.run_id)

    drift = monitor(package.output, deploy.output)

    @task
    def cleanup(approved: dict | None, params: dict, dag_run=None, ti=None) -> list[str]:
        """Stop the run's prepare / Neo jobs still running; on failure or a refused rollout cancel its IoT job
        and remove a fleet it created; with delete_fleet delete the fleet (edge_deployment.cleanup)."""
        from orchard.edge_deployment.cleanup import cleanup_run, deploy_path_not_through

        not_through = deploy_path_not_through(ti, rollout_approval.refused(approved))
        return cleanup_run(params, DAG_ID, dag_run.run_id, not_through)

    # A teardown of validate_model (nothing billable exists before it succeeds), so it runs whatever failed
    # after it — a half-made fleet included. Names come from params and run_id, never from a task's XCom.
    # Its failure fails the run: a job or a fleet may be left.
    teardown = cleanup(approval.output).as_teardown(setups=checked, on_failure_fail_dagrun=True)

    @task(trigger_rule="all_done", outlets=[PACKAGES_ASSET], retries=0)
    def report(results: dict, ti=None, dag_run=None, outlet_events=None) -> str:
        """The run report: package, per-device outcome and predictions, int8 figures, drift plots, cost."""
        from orchard.edge_deployment.report import announcement, publish_report
        from orchard.run_results import announce, failure_causes

        causes = failure_causes(ti)  # the tasks that failed first, then those not run because of them
        outcomes = ti.xcom_pull(task_ids="deploy", key="device_outcomes")  # pushed also when deploy fails
        published = publish_report(DAG_ID, dag_run.run_id, results, outcomes, causes)
        uri = published.uri
        ti.xcom_push(key="report_uri", value=uri)  # the key the UI and `make demo` read
        announce(  # with the report's metrics in hand: nothing read back
            ti,
            uri,
            published.metrics,
            cost_usd=published.cost_usd,
            **announcement(results, causes),
            outlet_events=outlet_events,
            asset=PACKAGES_ASSET,
        )
        if causes:  # the report is the run's last word: it must not turn a failed deployment green
            raise AirflowException(f"the run failed at {causes}; its report: {uri}")
        return uri

    # What each task returned (None where it did not succeed), as XCom arguments; not validate_model's: a
    # setup's direct downstream tasks must be ALL_SUCCESS (the prepare job is found by its name instead).
    results = {
        "compiled": compile_model.output,
        "package": package.output,
        "fleet": fleet,
        "deployment": deploy.output,
        "drift": drift,
        "removed": teardown,
        "approval": approval.output,  # None when the run ended before it
    }
    published = with_report_link(report(results))
    prepare >> compile_model
    package >> fleet  # no fleet (secrets, certificates) for a model that did not compile
    approval >> deploy  # a real fleet gets the model only once a person approves (or approval is off)
    [deploy, prepare, compile_model] >> teardown
    [drift, teardown] >> published

    @task(trigger_rule="all_done")
    def sweep_leftovers(approved: dict | None, params: dict, dag_run=None, ti=None) -> str:
        """Last task, behind the cleanup (orchard.sweep): its removal again by this run's names, the fleet
        decided from the deploy path and params as the cleanup did; fails naming what it removed, or,
        nothing left, the run's failed tasks."""
        from orchard.edge_deployment.cleanup import deploy_path_not_through, sweep_run_resources
        from orchard.run_results import failure_causes
        from orchard.sweep import finish_run

        not_through = deploy_path_not_through(ti, rollout_approval.refused(approved))
        swept = sweep_run_resources(params, DAG_ID, dag_run.run_id, not_through)
        return finish_run(swept, failure_causes(ti))

    # Last, after everything (it is the run's only leaf, so it carries the run's state: orchard.sweep).
    [teardown, published] >> sweep_leftovers(approval.output)


edge_deployment()
