"""orchard.fruit_features.plan: input checks before anything billable, the AWS requests of a run."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from orchard.fruit_features import plan
from orchard.settings import Settings

PARAMS = {
    "images_prefix": "s3://data/fruits",
    "output_prefix": "s3://data/features/",
    "feature_model": "efficientnet_lite0",
    "pca_k": None,
    "pca_variance": 0.9,
    "emr_release": "emr-7.5.0",
    "master_instance_type": "m5.xlarge",
    "core_instance_type": "m5.2xlarge",
    "core_node_counts": [2, 4],
    "idle_timeout_minutes": 60,
    "onnx_batch_size": 32,
    "step_timeout_minutes": 240,
}
SETTINGS = Settings(region="us-east-1", artifacts_bucket="artifacts")


@pytest.fixture
def s3(monkeypatch):
    # moto in-process, not the session's sandbox (whose AWS_ENDPOINT_URL would take mock_aws's fake key)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="data")
        client.create_bucket(Bucket="artifacts")
        yield client


def put_photos(s3, keys):
    for key in keys:
        s3.put_object(Bucket="data", Key=f"fruits/{key}", Body=b"" if "empty" in key else b"jpeg bytes")


def test_a_run_plans_one_output_per_core_node_count(s3):
    put_photos(s3, ["apple/a.jpg", "apple/b.PNG", "pear/c.jpeg", "pear/empty.jpg", "notes.txt"])

    result = plan.check_inputs(PARAMS, s3, "fruit_features", "manual__2026-11-21T10:00:00+00:00", SETTINGS)

    assert result["images"]["count"] == 4 and result["images"]["classes"] == ["apple", "pear"]
    assert result["images"]["empty"] == ["pear/empty.jpg"]
    assert result["params"]["images_prefix"] == "s3://data/fruits/"
    outputs_ = [point["output"] for point in result["points"]]
    assert [p["core_nodes"] for p in result["points"]] == [2, 4]
    assert outputs_[0].startswith("s3://data/features/fruit_features/manual-20261121t100000-")
    assert outputs_[0].endswith("/core_nodes=2/") and outputs_[1].endswith("/core_nodes=4/")


@pytest.mark.parametrize(
    ("change", "photos", "message"),
    [
        ({}, [], "no images (jpg, jpeg, png, bmp, webp) under s3://data/fruits/"),
        ({}, ["loose.jpg", "apple/a.jpg"], "1 images sit directly under s3://data/fruits/"),
        ({"pca_k": 5, "pca_variance": None}, ["apple/a.jpg", "apple/b.jpg"], "pca_k 5 is more than the 2"),
        ({"output_prefix": "s3://data/fruits/out/"}, ["apple/a.jpg"], "overlap"),
        ({"core_node_counts": [2, 2]}, ["apple/a.jpg"], "distinct node counts"),
        ({"pca_k": None, "pca_variance": None}, ["apple/a.jpg"], "give pca_k"),
        ({"images_prefix": "data/fruits/"}, ["apple/a.jpg"], "is not an S3 prefix"),
    ],
)
def test_bad_inputs_fail_before_anything_billable_with_the_fix(s3, change, photos, message):
    put_photos(s3, photos)
    with pytest.raises(plan.InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan.check_inputs({**PARAMS, **change}, s3, "fruit_features", "manual__1", SETTINGS)


def test_the_cluster_request_is_named_and_safe(s3):
    put_photos(s3, ["apple/a.jpg", "apple/b.jpg"])
    planned = plan.check_inputs({**PARAMS, "pca_k": 2}, s3, "fruit_features", "manual__1", SETTINGS)
    code = {name: f"s3://artifacts/code/{name}" for name in plan.JOB_FILES}

    request = plan.cluster_request(
        planned,
        planned["points"][1],
        code,
        "s3://artifacts/m/model.onnx",
        Settings(),
        "fruit_features",
        "manual__1",
    )

    overrides = request["overrides"]
    assert overrides["Name"].startswith("fruit_features-manual__1-nodes4-")
    core = next(g for g in overrides["Instances"]["InstanceGroups"] if g["InstanceRole"] == "CORE")
    assert core == {"Name": "core", "InstanceRole": "CORE", "InstanceType": "m5.2xlarge", "InstanceCount": 4}
    assert overrides["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    assert overrides["SecurityConfiguration"] == plan.IMDS_SECURITY_CONFIGURATION
    assert overrides["BootstrapActions"][0]["ScriptBootstrapAction"]["Path"] == code["bootstrap.sh"]
    assert overrides["LogUri"].startswith("s3://orchard-artifacts/")
    [step] = request["steps"]
    args = step["HadoopJarStep"]["Args"]
    assert (
        args[:2] == ["spark-submit", "--deploy-mode"]
        and "--files" in args
        and "s3://artifacts/m/model.onnx" in args
    )
    assert args[args.index("--output") + 1] == planned["points"][1]["output"]
    assert args[args.index("--pca-k") + 1] == "2" and "--pca-variance" not in args


def test_the_export_job_uses_the_registry_of_the_settings_region():
    location = plan.model_location(Settings(), "mobilenet_v2")
    request = plan.export_request(Settings(region="eu-west-3"), location, "fruit_features", "manual__1")

    assert (
        location["uri"]
        == f"s3://orchard-artifacts/fruit_features/models/mobilenet_v2/{location['version']}/model.onnx"
    )
    assert request["AppSpecification"]["ImageUri"].startswith(
        "123456789012.dkr.ecr.eu-west-3.amazonaws.com/orchard/"
    )
    assert request["AppSpecification"]["ContainerArguments"][:2] == ["--model", "mobilenet_v2"]
    assert request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"] == location["prefix"]
    # The model version is the export image's tag: a new release exports again, with no disk read.
    assert location["version"] == Settings().image_tag
    assert plan.model_location(Settings(image_tag="0.2.0"), "mobilenet_v2")["version"] == "0.2.0"


def make_bucket(s3, name: str, region: str) -> None:
    config = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=name, **config)


def test_the_run_region_is_the_settings_region_and_lands_in_the_plan(s3):
    put_photos(s3, ["apple/a.jpg"])
    for name in ("paris-data", "paris-artifacts"):
        make_bucket(s3, name, "eu-west-3")
    s3.put_object(Bucket="paris-data", Key="fruits/apple/a.jpg", Body=b"jpeg bytes")
    settings = Settings(region="eu-west-3", artifacts_bucket="paris-artifacts")
    params = {**PARAMS, "images_prefix": "s3://paris-data/fruits/", "output_prefix": "s3://paris-data/out/"}

    planned = plan.check_inputs(params, s3, "fruit_features", "manual__1", settings)

    assert planned["region"] == "eu-west-3" and "region" not in planned["params"]


@pytest.mark.parametrize(
    ("settings_region", "bucket_region", "message"),
    [
        # a bucket in another region: refused, naming the bucket, both regions and the fix
        (
            "us-east-1",
            "us-west-2",
            r"bucket images \(images_prefix\) is in us-west-2, not in the run's "
            "region us-east-1",
        ),
        (
            "eu-west-3",
            "eu-central-1",
            r"bucket images \(images_prefix\) is in eu-central-1, not in the "
            "run's region eu-west-3",
        ),
        # an EU run with a bucket outside the EU: the GDPR refusal
        (
            "eu-west-3",
            "us-east-1",
            "bucket images .* is in us-east-1, outside the EU, but the run's region eu-west-3 is in the EU",
        ),
    ],
)
def test_a_bucket_outside_the_run_region_is_refused(s3, settings_region, bucket_region, message):
    make_bucket(s3, "images", bucket_region)
    s3.put_object(Bucket="images", Key="fruits/apple/a.jpg", Body=b"jpeg bytes")
    for name in ("out", "arts"):
        make_bucket(s3, name, settings_region)
    settings = Settings(region=settings_region, artifacts_bucket="arts")
    params = {**PARAMS, "images_prefix": "s3://images/fruits/", "output_prefix": "s3://out/features/"}

    with pytest.raises(plan.InputError, match=message):
        plan.check_inputs(params, s3, "fruit_features", "manual__1", settings)


def test_every_bucket_of_the_run_is_checked_and_the_legacy_eu_location_is_eu_west_1(s3):
    make_bucket(s3, "in-ireland", "eu-west-1")
    assert plan.bucket_region(s3, "data") == "us-east-1"  # GetBucketLocation: null LocationConstraint
    assert plan.bucket_region(s3, "in-ireland") == "eu-west-1"
    put_photos(s3, ["apple/a.jpg"])
    # the reports bucket (a setting, not a param) in another region is refused too
    settings = Settings(region="us-east-1", artifacts_bucket="artifacts", reports_bucket="in-ireland")
    message = r"bucket in-ireland \(setting reports_bucket\) is in eu-west-1"
    with pytest.raises(plan.InputError, match=message):
        plan.check_inputs(PARAMS, s3, "fruit_features", "manual__1", settings)
    with pytest.raises(plan.InputError, match="bucket nowhere does not exist"):
        plan.bucket_region(s3, "nowhere")


IMAGE_NAME_CASES = {
    "apple/a.jpg": True,
    "apple/b.JPG": True,  # issue 13.6: the check counted these, the job's glob (jpg|JPG only) missed Jpg
    "apple/c.Jpeg": True,
    "apple/d.PnG": True,
    "apple/sub/e.webp": True,
    "apple/x_y=1/f.bmp": True,
    "apple/.g.jpg": False,  # Spark hides .x and _x at every level: the check must not count them
    "apple/_h.jpg": False,
    "_tmp/i.jpg": False,
    ".cache/j.png": False,
    "apple/k.jpg._COPYING_": False,
    "apple/readme.txt": False,
    "apple/jpg": False,
    "apple/.jpg": False,
    "apple/folder.jpg/": False,
}


@pytest.mark.parametrize(("key", "expected"), sorted(IMAGE_NAME_CASES.items()))
def test_one_rule_says_what_an_image_file_is(key, expected):
    assert plan.is_image_file(key) is expected


def test_the_input_check_and_the_spark_job_share_the_image_rule_verbatim():
    """Job code cannot be imported by Airflow (include/ is not deployed): the plugin's copy of the rule
    must stay the same text as the job's (include/fruit_features/image_model.py)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]

    def definitions(path: Path) -> dict[str, str]:
        text = path.read_text()
        nodes = ast.parse(text).body
        found = {n.name: ast.get_source_segment(text, n) for n in nodes if isinstance(n, ast.FunctionDef)}
        for node in nodes:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "IMAGE_EXTENSIONS":
                found["IMAGE_EXTENSIONS"] = ast.get_source_segment(text, node)
        return {name: found.get(name) for name in ("IMAGE_EXTENSIONS", "hidden_by_spark", "is_image_file")}

    job = definitions(root / "include" / "fruit_features" / "image_model.py")
    assert all(job.values()), job
    assert definitions(root / "plugins" / "orchard" / "fruit_features" / "plan.py") == job


def test_an_images_prefix_is_a_folder_not_a_name_prefix(s3):
    """Issue 13.7: images_prefix s3://data/fruits/cam1 lists cam1/ only, never cam10/ or cam1-old/."""
    put_photos(s3, ["cam1/apple/a.jpg", "cam10/apple/b.jpg", "cam1-old/pear/c.jpg"])
    checked = plan.check_params({**PARAMS, "images_prefix": "s3://data/fruits/cam1"})
    assert checked["images_prefix"] == "s3://data/fruits/cam1/"
    found = plan.list_images(s3, checked["images_prefix"])
    assert (found["count"], found["classes"]) == (1, ["apple"])


def test_input_errors_are_final_and_name_the_users_prefix(s3):
    from orchard.errors import InputError

    with pytest.raises(InputError, match="s3://data/none/") as raised:
        params = {**PARAMS, "images_prefix": "s3://data/none/"}
        plan.check_inputs(params, s3, "fruit_features", "r1", SETTINGS)
    assert "upload the photos" in str(raised.value)


def test_the_iam_policy_limits_passrole_by_service_and_covers_the_emr_calls():
    from pathlib import Path

    policy = json.loads(
        (Path(__file__).resolve().parents[3] / "include" / "iam" / "fruit_features.json").read_text()
    )
    statements = policy["Statement"]
    passrole = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert passrole and all("iam:PassedToService" in s["Condition"]["StringEquals"] for s in passrole)
    actions = {
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert {
        "elasticmapreduce:RunJobFlow",
        "elasticmapreduce:AddJobFlowSteps",
        "elasticmapreduce:DescribeStep",
        "elasticmapreduce:TerminateJobFlows",
        "sagemaker:CreateProcessingJob",
        "elasticmapreduce:ListClusters",  # the cleanup and the retry find the run's clusters by name
        "sagemaker:ListProcessingJobs",  # the export cleanup finds the run's export job by name
        "sagemaker:StopProcessingJob",
    } <= actions


def test_run_plan_reads_the_settings_once_and_asks_s3_at_once(s3, monkeypatch):
    """The buckets' regions, the images' listing and the job code's manifest are asked at once (each gated
    call answers only once all four are in flight: one by one they time out), on one client whose connection
    comes from the one settings read (was: two reads, every call one after the other)."""
    import orchard.aws
    import orchard.settings
    from deploy.job_code import deploy
    from tests.plugins.fruit_features.gates import Gated, barrier

    put_photos(s3, ["apple/a.jpg", "pear/b.jpg"])
    deploy(bucket="artifacts", image_tag=SETTINGS.image_tag, names=["fruit_features"], s3=s3)
    reads, clients = [], []
    monkeypatch.setattr(orchard.settings, "load_settings", lambda: reads.append(1) or SETTINGS)
    buckets = {"data", "artifacts"}  # images, output, artifacts, reports (= the artifacts bucket)
    gated = Gated(
        s3,
        barrier(len(buckets) + 2),
        lambda name, kwargs: (
            name in ("get_bucket_location", "get_paginator")
            or (name == "get_object" and kwargs["Key"].endswith("manifest.json"))
        ),
    )

    def client(service, conn_id=None):
        clients.append((service, conn_id))
        return gated

    monkeypatch.setattr(orchard.aws, "client", client)

    planned = plan.run_plan(PARAMS, "fruit_features", "manual__1")

    assert planned["images"]["count"] == 2 and planned["images"]["classes"] == ["apple", "pear"]
    assert (len(reads), clients) == (1, [("s3", SETTINGS.aws_conn_id)])


def test_a_wrong_region_is_named_before_missing_job_code_even_when_asked_at_once(s3, monkeypatch):
    """The checks run at once, the errors keep their order: the bucket's region, then the job code."""
    import orchard.aws
    import orchard.settings

    make_bucket(s3, "in-ireland", "eu-west-1")
    put_photos(s3, ["apple/a.jpg"])
    settings = Settings(region="us-east-1", artifacts_bucket="artifacts", reports_bucket="in-ireland")
    monkeypatch.setattr(orchard.settings, "load_settings", lambda: settings)
    monkeypatch.setattr(orchard.aws, "client", lambda service, conn_id=None: s3)

    with pytest.raises(
        plan.InputError, match=r"bucket in-ireland \(setting reports_bucket\) is in eu-west-1"
    ):
        plan.run_plan(PARAMS, "fruit_features", "manual__1")  # and no job code is deployed either


def test_find_model_reads_the_settings_once(s3, monkeypatch):
    """The model's place and the client's connection come from one settings read (was: two)."""
    import orchard.aws
    import orchard.settings

    reads = []
    monkeypatch.setattr(orchard.settings, "load_settings", lambda: reads.append(1) or SETTINGS)
    monkeypatch.setattr(orchard.aws, "client", lambda service, conn_id=None: conn_id and s3)
    s3.put_object(
        Bucket="artifacts", Key=f"fruit_features/models/mobilenet_v2/{SETTINGS.image_tag}/model.onnx"
    )

    assert plan.find_model("mobilenet_v2")["exists"] is True
    assert len(reads) == 1
