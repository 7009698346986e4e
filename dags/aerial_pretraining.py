"""
### Aerial pretraining: BigEarthNet-S2 → DINO ViT on SageMaker → linear probe → mAP gate → model registry

Self-supervised pretraining of a Vision Transformer (DINO, ViT-S/16 by default) on unlabeled aerial imagery,
transferred to 19-class land-cover classification with a linear probe, and registered in the SageMaker
model registry **only if** its test mAP beats the baseline backbone (ImageNet DINO) by `promotion_margin`.
Seed: `002_a23e8d1ad611cce9.txt` (Travelers / AWS: mAP 0.685 → 0.732). Docs: `docs/pipelines/aerial_pretraining.md`.

**Steps**
1. `validate_inputs` (cheap, no GPU): params consistent; split and exclusion lists, baseline checkpoint and the
   deployed job code (`s3://<artifacts bucket>/job-code/<image_tag>/aerial_pretraining/`) present.
2. `plan_jobs`: the job requests; the job code is the release's, deployed by `make deploy` (`orchard.job_code`).
3. `prepare_dataset` (SageMaker processing, CPU): metadata → `final_ben_s2.parquet` (snow / cloud / shadow
   patches out, original split, BEN-19 labels), RGB images from B04/B03/B02 (÷2000 × 255, clipped at 255);
   fails naming the file or label on an unknown label, a missing band file, an empty split, or a baseline
   checkpoint of another architecture — before any GPU job starts.
4. `pretrain` (SageMaker training, PyTorch image, script mode `train.py`): DINO multi-crop, data parallel
   over every GPU (SMDDP on p4d, torchrun otherwise), checkpoints to a per-run S3 URI, managed spot optional
   (a restarted or retried job resumes from the last checkpoint), MaxRuntime `max_runtime_hours`.
5. `linear_probe` (mapped: the new backbone and the baseline): frozen features, linear head, BCE, 19 labels.
6. `evaluate`: test-split macro / micro / per-class AP of both → `evaluation.json`.
7. `promotion_gate` → `approve_promotion` → `register_model` (model package: Approved, its ApprovalDescription
   naming who approved in Airflow and when; PendingManualApproval when `require_approval` is off), or
   `not_promoted`; the run succeeds either way; the branch that ran returns the outcome (to the report).
   `approve_promotion` waits for a person (UI: Required Actions; subject and body give new vs baseline mAP,
   the margin and the evaluation URI) unless `require_approval` is off. **Reject**, or no answer within
   `approval_timeout_hours` (the default is Reject), skips `register_model`: the run reports "not promoted:
   rejected by <user>" / "approval timed out", runs its cleanup and report, and ends green.
8. `publish_report`: loss curve, mAP table, per-class AP bars, the pretraining job's GPU / CPU / memory
   utilization (CloudWatch `/aws/sagemaker/TrainingJobs`), console links, cost estimate of every job attempt
   (XCom `report_uri`);
   updates Asset `aerial_pretraining.backbone`.
9. `stop_jobs_left_running` (teardown; runs when the job tasks end, whatever failed, before the report): finds
   every job of this run by its deterministic name (all attempts) and stops those still in progress; if it
   fails, the run fails (a job may still be billing).

A job that refuses its input (`InputError:` in its FailureReason) fails its task without retry; a person's
"mark failed" / "clear" stops the job, a worker's graceful shutdown does not (docs/architecture.md, faults).

**Inputs**: `raw_dataset_uri` (BigEarthNet-S2 v1.0 layout: `<patch>/<patch>_B0{2,3,4}.tif`,
`<patch>/<patch>_labels_metadata.json`, `train.csv`, `val.csv`, `test.csv`,
`patches_with_seasonal_snow.csv`, `patches_with_cloud_and_shadow.csv`) and `baseline_checkpoint_uri`.
**Outputs** (under `s3://<artifacts bucket>/aerial_pretraining/<run>/`): `dataset/`, `checkpoints/`,
`models/<job>/output/model.tar.gz` (teacher backbone `checkpoint.pth`), `evaluation.json`; report in the reports bucket.

**Cost**: defaults (ml.p3.16xlarge × 1, 100 epochs) ≈ 11 h ≈ USD 310 on demand in us-east-1 (the seed's run);
managed spot usually saves 60–70 %. Each run's report has its own estimate.

**IAM**: `include/iam/aerial_pretraining.json` (Airflow's role: SageMaker jobs and model registry, S3,
CloudWatch Logs, `cloudwatch:GetMetricData` for the report, `iam:PassRole` to SageMaker only) and `include/iam/aerial_pretraining_execution_role.json`
(the role the jobs assume).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, chain, dag, task

from orchard import naming
from orchard import params as form
from orchard.aerial_pretraining import DAG_ID
from orchard.aerial_pretraining.instances import CPU_INSTANCES, GPUS
from orchard.operators.approval import OptionalApprovalOperator
from orchard.operators.sagemaker_job_retry import START_AND_UPLOAD_MARGIN_S
from orchard.operators.sagemaker_processing import OrchardSageMakerProcessingOperator
from orchard.operators.sagemaker_training import OrchardSageMakerTrainingOperator
from orchard.settings import load_settings
from orchard.task_defaults import DEFAULT_ARGS
from orchard.ui.links import with_report_link

_SETTINGS = load_settings(variables=False)  # parse-time defaults only; tasks read the live settings
BACKBONE_ASSET = Asset(name="aerial_pretraining.backbone", group="model")

# The trigger form (orchard.params: strict patterns, empty = None for what is optional, sections).
PROBE = "Linear probe"
PROMOTION = "Promotion"
PARAMS = form.with_defaults(
    DAG_ID,
    {
        "raw_dataset_uri": form.s3_folder(
            f"s3://{_SETTINGS.data_bucket}/aerial_pretraining/bigearthnet-s2/",
            description="BigEarthNet-S2 v1.0 folder: patch folders with B02/B03/B04 GeoTIFFs and label JSON, "
            "split and exclusion CSVs.",
        ),
        "baseline_checkpoint_uri": form.s3_object(
            f"s3://{_SETTINGS.artifacts_bucket}/aerial_pretraining/baselines/dino_deitsmall16_pretrain.pth",
            description="Backbone to beat (the seed: DINO ViT-S/16 pretrained on ImageNet, same arch and patch "
            "size).",
        ),
        "prepared_dataset_uri": form.s3_folder(
            None,
            optional=True,
            description="Where prepare_dataset writes the parquet and RGB images.",
            empty_means="this run's prefix in the artifacts bucket",
        ),
        "arch": form.choice(
            "vit_small",
            ["vit_small", "vit_tiny", "vit_base", "vit_demo"],
            section=form.MODEL,
            description="ViT size; vit_demo is the tiny CPU model of the local demo.",
        ),
        "patch_size": form.integer(
            16,
            minimum=8,
            maximum=16,
            enum=[8, 16],
            section=form.MODEL,
            description="ViT patch size (8 or 16).",
        ),
        "out_dim": form.integer(
            65536, minimum=16, maximum=262144, section=form.MODEL, description="DINO head output dimension."
        ),
        "epochs": form.integer(100, maximum=800, section=form.TRAINING, description="Pretraining epochs."),
        "batch_size": form.integer(
            128,
            maximum=4096,
            section=form.TRAINING,
            description="Images per step over all GPUs (the seed: 128 on one ml.p3.16xlarge).",
        ),
        "checkpoint_frequency": form.integer(
            20,
            maximum=800,
            section=form.TRAINING,
            description="Keep a numbered checkpoint every N epochs (the latest is saved every epoch).",
        ),
        "global_crop_size": form.integer(
            224, minimum=32, maximum=512, section=form.TRAINING, description="DINO global crop, in pixels."
        ),
        "local_crop_size": form.integer(
            96, minimum=16, maximum=256, section=form.TRAINING, description="DINO local crop, in pixels."
        ),
        "local_crops_number": form.integer(
            8, minimum=0, maximum=16, section=form.TRAINING, description="DINO local crops per image."
        ),
        "pretrain_instance_type": form.instance_type(
            "ml.p3.16xlarge", GPUS, description="Pretraining instance type."
        ),
        "pretrain_instance_count": form.integer(
            1, maximum=8, section=form.COMPUTE, description="Pretraining instances (data parallel)."
        ),
        "max_runtime_hours": form.integer(
            24, maximum=120, section=form.COMPUTE, description="Pretraining MaxRuntime, in hours."
        ),
        "use_spot_instances": form.flag(
            False, section=form.COMPUTE, description="Managed spot training (resumes from checkpoints)."
        ),
        "spot_max_wait_hours": form.integer(
            48,
            maximum=72,
            section=form.COMPUTE,
            description="MaxWaitTime with spot: runtime plus waiting for capacity; >= max_runtime_hours.",
        ),
        "prepare_instance_type": form.instance_type(
            "ml.m5.xlarge", sorted(CPU_INSTANCES), description="prepare_dataset's (CPU) instance type."
        ),
        "probe_instance_type": form.instance_type(
            "ml.p3.2xlarge",
            GPUS,
            section=PROBE,
            description="One instance per probe job (the probe is single-device).",
        ),
        "probe_epochs": form.integer(50, maximum=500, section=PROBE, description="Linear probe epochs."),
        "probe_image_size": form.integer(
            224, minimum=32, maximum=512, section=PROBE, description="Linear probe image size, in pixels."
        ),
        "promotion_margin": form.number(
            0.01,
            minimum=-1,
            maximum=1,
            section=PROMOTION,
            description="Register only if new macro mAP >= baseline mAP + margin.",
        ),
        "model_package_group": form.name(
            "aerial-dino-vit",
            pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
            section=PROMOTION,
            example="aerial-dino-vit",
            description="SageMaker model package group the model is registered in.",
        ),
        **form.approval("registering the model"),
        "pytorch_image_tag": form.text(
            "2.5.1-{device}-py311",
            pattern=r"^[A-Za-z0-9_.{}-]+$",
            section=form.ADVANCED,
            example="2.5.1-{device}-py311",
            description="AWS PyTorch training image tag; {device} becomes gpu or cpu.",
        ),
        "poll_seconds": form.integer(
            60, maximum=600, section=form.ADVANCED, description="Seconds between job status polls."
        ),
    },
)

# The task must outlive the longest job the form allows: MaxRuntime or, with spot, MaxWaitTime (their form
# maxima), plus what happens outside it (provisioning, download, upload: the operator's wait margin) and an
# hour of polling slack. Derived, so raising a maximum above can never leave the task killing a legal job.
PRETRAIN_TIMEOUT = timedelta(
    hours=max(PARAMS["max_runtime_hours"].schema["maximum"], PARAMS["spot_max_wait_hours"].schema["maximum"]),
    seconds=START_AND_UPLOAD_MARGIN_S + 3600,
)


@dag(
    dag_id=DAG_ID,
    schedule=None,
    catchup=False,
    description="DINO ViT pretraining on aerial imagery (SageMaker) -> linear probe -> mAP gate -> "
    "model registry",
    tags=form.tags(DAG_ID, "sagemaker", "s3", "cloudwatch"),
    default_args={**DEFAULT_ARGS, "retry_delay": timedelta(minutes=2)},
    params=PARAMS,
    user_defined_macros=naming.MACROS,
    doc_md=__doc__,
    max_active_runs=1,
)
def aerial_pretraining():
    @task
    def validate_inputs(params: dict | None = None) -> dict:
        """Everything checkable without a job: params, split/exclusion lists, the baseline checkpoint."""
        from orchard import aws
        from orchard.aerial_pretraining.inputs import check_inputs

        form.check(params)  # plain words for every bad param, before anything else
        check_inputs(params, aws.client("s3"), load_settings())
        return {"checked": True}

    @task(multiple_outputs=True)
    def plan_jobs(params: dict | None = None, run_id: str | None = None) -> dict:
        """The job requests, running the job code `make deploy` put in S3 for this image_tag."""
        from orchard.aerial_pretraining.plan import job_plan

        return job_plan(params, load_settings(), run_id)

    checked = validate_inputs()
    plan = plan_jobs()

    prepare_dataset = OrchardSageMakerProcessingOperator(
        task_id="prepare_dataset",
        config=plan["prepare"],
        check_interval="{{ params.poll_seconds }}",
        execution_timeout=timedelta(hours=8),
    )

    pretrain = OrchardSageMakerTrainingOperator(
        task_id="pretrain",
        config=plan["pretrain"],
        check_interval="{{ params.poll_seconds }}",
        execution_timeout=PRETRAIN_TIMEOUT,
    )

    @task
    def probe_requests(
        code: dict, pretrained: dict, params: dict | None = None, run_id: str | None = None
    ) -> list[dict]:
        from orchard.aerial_pretraining.plan import probe_configs

        return probe_configs(params, load_settings(), run_id, code, pretrained)

    linear_probe = OrchardSageMakerTrainingOperator.partial(
        task_id="linear_probe",
        check_interval="{{ params.poll_seconds }}",
        execution_timeout=timedelta(hours=6),
    ).expand(config=probe_requests(plan["code"], pretrain.output))

    @task
    def evaluate(probes: list[dict], run_id: str | None = None) -> dict:
        """Both probes' test metrics side by side → evaluation.json; a small summary to XCom."""
        from orchard import aws
        from orchard.aerial_pretraining.evaluation import evaluate

        return evaluate(aws.client("s3"), probes, run_id, load_settings().artifacts_bucket)

    @task.branch
    def promotion_gate(evaluation: dict, params: dict | None = None) -> str:
        from orchard.aerial_pretraining.promotion import gate_decision

        decision = gate_decision(evaluation, params)
        print(f"promotion gate: {decision['reason']}")
        return "approve_promotion" if decision["promoted"] else "not_promoted"

    @task(multiple_outputs=True)
    def promotion_request(evaluation: dict, params: dict | None = None, run_id: str | None = None) -> dict:
        from orchard.aerial_pretraining.approval import request

        return request(evaluation, params, run_id)

    @task(retries=2)
    def register_model(
        pretrained: dict,
        evaluation: dict,
        approval: dict,
        params: dict | None = None,
        run_id: str | None = None,
    ) -> dict:
        """A model package version in the group, Approved when a person approved (else
        PendingManualApproval); a retry finds the one it made."""
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        from orchard.aerial_pretraining.promotion import register_backbone

        settings = load_settings()
        hook = SageMakerHook(aws_conn_id=settings.aws_conn_id)
        return register_backbone(hook, params, settings, run_id, pretrained, evaluation, approval)

    @task
    def not_promoted(evaluation: dict, params: dict | None = None) -> dict:
        from orchard.aerial_pretraining.promotion import gate_decision

        decision = gate_decision(evaluation, params)
        print(f"NOT PROMOTED: {decision['reason']}. The backbone stays in S3; nothing was registered.")
        return decision

    @task(trigger_rule="none_failed_min_one_success", outlets=[BACKBONE_ASSET])
    def publish_report(
        prepared: dict,
        pretrained: dict,
        probes: list[dict],
        evaluation: dict,
        registered: dict | None,
        skipped: dict | None,
        approval: dict | None,
        params: dict | None = None,
        run_id: str | None = None,
        ti=None,
        outlet_events=None,
    ) -> str:
        from orchard.aerial_pretraining.approval import outcome
        from orchard.aerial_pretraining.report import announcement, asset_extra, publish_run_report
        from orchard.run_results import announce

        promotion = outcome(evaluation, params, registered, skipped, approval)
        uri = publish_run_report(run_id, params, prepared, pretrained, probes, evaluation, promotion)
        ti.xcom_push(key="report_uri", value=uri)  # the key the UI and `make demo` read
        outlet_events[BACKBONE_ASSET].extra = asset_extra(pretrained, evaluation, promotion, uri)
        news = announcement(evaluation, promotion)
        announce(ti, uri, **news, outlet_events=outlet_events, asset=BACKBONE_ASSET)
        return uri

    @task
    def stop_jobs_left_running(run_id: str | None = None) -> list[str]:
        """Teardown: whatever failed or timed out, no job of this run keeps billing (all attempts)."""
        from orchard import aws
        from orchard.aerial_pretraining.plan import RUN_JOBS, job_name
        from orchard.operators.sagemaker_job_retry import stop_all_attempts

        client = aws.client("sagemaker")
        stopped = []
        for kind, resource, suffix in RUN_JOBS:
            stopped += stop_all_attempts(client, kind, job_name(resource, run_id, suffix))
        print(f"stopped jobs left running: {stopped or 'none'}")
        return stopped

    evaluation = evaluate(linear_probe.output)
    gate = promotion_gate(evaluation)
    asked = promotion_request(evaluation)
    approval = OptionalApprovalOperator(
        task_id="approve_promotion", subject=asked["subject"], body=asked["body"]
    )
    registered = register_model(pretrain.output, evaluation, approval.output)
    skipped = not_promoted(evaluation)
    report = publish_report(
        prepare_dataset.output,
        pretrain.output,
        linear_probe.output,
        evaluation,
        registered,
        skipped,
        approval.output,
    )
    with_report_link(report)

    chain(checked, plan, prepare_dataset, pretrain)
    chain(gate, [approval, skipped])
    chain(approval, registered, report)  # a Reject or a timeout skips register_model: not promoted
    skipped >> report
    # The cleanup waits for every task that starts a job, and the report waits for it: the report stays the
    # run's leaf, so a failed job task fails the run (a teardown with on_failure_fail_dagrun as the only leaf
    # would decide the run's state alone: green after a failed prepare_dataset), and so does a failed cleanup.
    cleanup = stop_jobs_left_running().as_teardown(setups=plan, on_failure_fail_dagrun=True)
    [prepare_dataset, pretrain, linear_probe] >> cleanup >> report


aerial_pretraining()
