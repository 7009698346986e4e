"""orchard.settings: precedence env > Airflow Variable > default, validation, derived defaults."""

from __future__ import annotations

import dataclasses

import pytest

from orchard import settings as s
from orchard.settings import Settings, load_settings

ALL_FIELDS = [f.name for f in dataclasses.fields(Settings)]


def variables(**values: str):
    """A Variable getter over ``orchard_<field>`` keys, recording what it was asked."""
    asked: list[str] = []

    def get(key: str) -> str | None:
        asked.append(key)
        return values.get(key)

    get.asked = asked  # type: ignore[attr-defined]
    return get


def test_defaults_without_env_or_variables():
    got = load_settings({}, variables=False)
    assert got == Settings()
    assert got.region == "us-east-1"
    assert got.aws_conn_id == "aws_default"
    assert (got.data_bucket, got.artifacts_bucket) == ("orchard-data", "orchard-artifacts")
    assert got.reports_bucket == got.artifacts_bucket
    assert got.reports_prefix == "reports/"
    assert got.ecr_registry == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert got.image_tag == "0.1.0"
    assert got.subnet_ids == () and got.security_group_ids == ()
    for arn in (got.sagemaker_execution_role_arn, got.batch_job_role_arn, got.batch_service_role_arn):
        assert arn.startswith("arn:aws:iam::123456789012:role/orchard-")
    assert got.batch_instance_role_arn == "arn:aws:iam::123456789012:instance-profile/orchard-batch-instance"


def test_every_field_is_documented_in_the_module_docstring():
    for field in ALL_FIELDS:
        assert f"| {field} | {s.env_name(field)}" in s.__doc__
        assert s.variable_name(field) in s.__doc__


def test_env_beats_variable_beats_default():
    getter = variables(orchard_data_bucket="from-variable", orchard_artifacts_bucket="var-artifacts")
    got = load_settings({"ORCHARD_DATA_BUCKET": "from-env"}, variables=getter)
    assert got.data_bucket == "from-env"
    assert got.artifacts_bucket == "var-artifacts"
    assert got.image_tag == "0.1.0"
    # A field set in the environment is not looked up as a Variable (one lookup less per field).
    assert "orchard_data_bucket" not in getter.asked
    assert "orchard_image_tag" in getter.asked


def test_empty_env_counts_as_unset():
    got = load_settings({"ORCHARD_DATA_BUCKET": "  "}, variables=variables(orchard_data_bucket="var-bucket"))
    assert got.data_bucket == "var-bucket"


def test_precedence_with_monkeypatched_process_env(monkeypatch):
    monkeypatch.setenv("ORCHARD_IMAGE_TAG", "1.2.3")
    monkeypatch.setenv("ORCHARD_REPORTS_PREFIX", "/runs/reports")
    got = load_settings(
        variables=variables(orchard_image_tag="9.9.9", orchard_ecr_registry="registry.local:5000")
    )
    assert got.image_tag == "1.2.3"
    assert got.reports_prefix == "runs/reports/"
    assert got.image_uri("orchard/pose-training") == "registry.local:5000/orchard/pose-training:1.2.3"


def test_real_airflow_variables_through_the_environment_backend(monkeypatch):
    # AIRFLOW_VAR_* is Airflow's own environment secrets backend: a real Variable lookup, no database.
    monkeypatch.setenv("AIRFLOW_VAR_ORCHARD_DATA_BUCKET", "airflow-var-bucket")
    monkeypatch.setenv("AIRFLOW_VAR_ORCHARD_IMAGE_TAG", "7.0.0")
    monkeypatch.setenv("ORCHARD_IMAGE_TAG", "8.0.0")
    monkeypatch.delenv("ORCHARD_DATA_BUCKET", raising=False)
    monkeypatch.delenv(s.USE_VARIABLES_ENV, raising=False)
    got = load_settings()
    assert got.data_bucket == "airflow-var-bucket"
    assert got.image_tag == "8.0.0"


def test_variables_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_ORCHARD_DATA_BUCKET", "airflow-var-bucket")
    monkeypatch.delenv("ORCHARD_DATA_BUCKET", raising=False)
    monkeypatch.setenv(s.USE_VARIABLES_ENV, "false")
    assert load_settings().data_bucket == "orchard-data"
    monkeypatch.delenv(s.USE_VARIABLES_ENV)
    assert load_settings(variables=False).data_bucket == "orchard-data"


def test_unreachable_variable_backend_falls_back_to_defaults(caplog):
    calls = []

    def broken(key: str) -> str | None:
        calls.append(key)
        raise ConnectionError("metadata DB unreachable")

    got = load_settings({"ORCHARD_DATA_BUCKET": "env-bucket"}, variables=broken)
    assert got.data_bucket == "env-bucket"
    assert got.artifacts_bucket == "orchard-artifacts"
    assert len(calls) == 1, "the first failure must disable further lookups"
    assert "Variables unavailable" in caplog.text


def test_no_airflow_configuration_means_no_variable_lookup(monkeypatch):
    monkeypatch.setattr(s, "_airflow_configured", lambda env: False)
    monkeypatch.setattr(s, "_airflow_variable", lambda key: pytest.fail("Variables read without Airflow"))
    assert load_settings({}).data_bucket == "orchard-data"


def test_region_honours_aws_default_region_after_orchard_region():
    assert load_settings({"AWS_DEFAULT_REGION": "eu-west-3"}, variables=False).region == "eu-west-3"
    env = {"AWS_DEFAULT_REGION": "eu-west-3", "ORCHARD_REGION": "eu-west-1"}
    assert load_settings(env, variables=False).region == "eu-west-1"
    env = {"AWS_DEFAULT_REGION": "eu-west-3"}
    assert load_settings(env, variables=variables(orchard_region="us-west-2")).region == "eu-west-3"


def test_derived_defaults_follow_their_source_fields():
    got = load_settings(
        {"ORCHARD_ARTIFACTS_BUCKET": "my-artifacts", "ORCHARD_REGION": "eu-west-1"}, variables=False
    )
    assert got.reports_bucket == "my-artifacts"
    assert got.ecr_registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    got = load_settings({"ORCHARD_REPORTS_BUCKET": "my-reports"}, variables=False)
    assert got.reports_bucket == "my-reports"


def test_id_lists_from_commas_or_json():
    env = {
        "ORCHARD_SUBNET_IDS": "subnet-0123456789abcdef0, subnet-89abcdef",
        "ORCHARD_SECURITY_GROUP_IDS": '["sg-0123456789abcdef0"]',
    }
    got = load_settings(env, variables=False)
    assert got.subnet_ids == ("subnet-0123456789abcdef0", "subnet-89abcdef")
    assert got.security_group_ids == ("sg-0123456789abcdef0",)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("region", "europe"),
        ("region", "US-EAST-1"),
        ("sagemaker_execution_role_arn", "orchard-sagemaker"),
        ("sagemaker_execution_role_arn", "arn:aws:iam::1234:role/x"),
        ("batch_job_role_arn", "arn:aws:s3:::bucket"),
        ("batch_instance_role_arn", "arn:aws:iam::123456789012:role/ecsInstanceRole"),
        ("batch_service_role_arn", "arn:aws:iam::123456789012:user/me"),
        ("emr_service_role", "arn:aws:iam::123456789012:user/me"),
        ("emr_instance_profile", "bad name with spaces"),
        ("data_bucket", "Orchard_Data"),
        ("artifacts_bucket", "ab"),
        ("reports_bucket", "-bad-"),
        ("ecr_registry", "https://registry"),
        ("image_tag", "has space"),
        ("subnet_ids", "subnet-xyz"),
        ("security_group_ids", "sg-1,sg-0123456789abcdef0"),
        ("aws_conn_id", "bad id"),
    ],
)
def test_bad_values_are_rejected_naming_the_variable(field, bad):
    env_var = s.env_name(field)
    with pytest.raises(ValueError) as raised:
        load_settings({env_var: bad}, variables=False)
    message = str(raised.value)
    assert env_var in message
    assert "expected" in message and "unset it" in message
    with pytest.raises(ValueError, match=s.variable_name(field)):
        load_settings({}, variables=variables(**{s.variable_name(field): bad}))


def test_direct_construction_is_validated_too():
    with pytest.raises(ValueError, match="Settings.region"):
        Settings(region="mars-1")


def test_accepted_values():
    env = {
        "ORCHARD_REGION": "us-gov-west-1",
        "ORCHARD_SAGEMAKER_EXECUTION_ROLE_ARN": "arn:aws-us-gov:iam::210987654321:role/service-role/SageMaker",
        "ORCHARD_EMR_SERVICE_ROLE": "arn:aws:iam::123456789012:role/EMR_DefaultRole",
        "ORCHARD_EMR_INSTANCE_PROFILE": "EMR_EC2_DefaultRole",
        "ORCHARD_ECR_REGISTRY": "localhost:5000",
    }
    got = load_settings(env, variables=False)
    assert got.sagemaker_execution_role_arn.endswith("service-role/SageMaker")
    assert got.emr_instance_profile == "EMR_EC2_DefaultRole"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().region = "eu-west-1"  # type: ignore[misc]


def test_image_uri():
    assert (
        s.image_uri("orchard/fruit-features", Settings(image_tag="2.0.1"))
        == "123456789012.dkr.ecr.us-east-1.amazonaws.com/orchard/fruit-features:2.0.1"
    )
    for bad in ("Orchard/Upper", "orchard/x:latest", "", "123.dkr.ecr.us-east-1.amazonaws.com/orchard/x"):
        with pytest.raises(ValueError, match="repository"):
            Settings().image_uri(bad)
