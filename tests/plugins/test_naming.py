"""orchard.naming: AWS-legal, deterministic, collision-free names from dag_id + run_id."""

from __future__ import annotations

import re

import jinja2
import pytest

from orchard import naming
from orchard.naming import MACROS, RULES, resource_name

RUN_IDS = [
    "manual__2026-11-21T10:00:00.123456+00:00",
    "scheduled__2026-11-21T00:00:00+00:00",
    "asset_triggered__2026-11-21T10:00:00.123456+00:00_AbCdEf12",
    "backfill__2026-01-01T00:00:00+00:00",
    "my run: retrain v2 (Jörg's)!",
    "x",
    "__--..//__",
    "manual__2026-11-21T10:00:00+00:00" + "_long" * 200,
]
DAG_IDS = ["pose_training", "aerial_pretraining", "Edge.Deployment-v2", "a" * 250, "_x_"]
SUFFIXES = ["", "dino", "linear_probe", "Stage 2/eval", "s" * 300]

EXPECTED_LIMITS = {
    "batch_job": 128,
    "batch_compute_environment": 128,
    "batch_job_queue": 128,
    "batch_job_definition": 128,
    "sagemaker_training_job": 63,
    "sagemaker_processing_job": 63,
    "sagemaker_transform_job": 63,
    "sagemaker_compilation_job": 63,
    "sagemaker_labeling_job": 63,
    "sagemaker_model": 63,
    "sagemaker_endpoint": 63,
    "sagemaker_endpoint_config": 63,
    "sagemaker_model_package_group": 63,
    "emr_cluster": 256,
    "emr_step": 256,
    "iot_job": 64,
    "iot_thing": 128,
    "iot_thing_group": 128,
    "secret": 512,
}
NAME_KINDS = sorted(EXPECTED_LIMITS)


def test_rules_cover_every_required_kind_with_aws_limits():
    assert set(RULES) == set(EXPECTED_LIMITS) | {"s3_prefix"}
    for kind, limit in EXPECTED_LIMITS.items():
        assert RULES[kind].max_length == limit, kind
    # SageMaker's own published pattern: no underscores anywhere.
    assert RULES["sagemaker_model_package_group"].pattern == r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


@pytest.mark.parametrize("kind", NAME_KINDS)
def test_names_are_legal_for_every_kind(kind):
    rule = RULES[kind]
    allowed = re.compile(f"{rule.allowed}+")
    for dag_id in DAG_IDS:
        for run_id in RUN_IDS:
            for suffix in SUFFIXES:
                name = resource_name(kind, dag_id, run_id, suffix)
                assert 1 <= len(name) <= rule.max_length, (kind, name)
                assert re.fullmatch(rule.pattern, name), (kind, name)
                assert allowed.fullmatch(name), (kind, name)
                assert re.match(rule.first, name), (kind, name)
                if rule.case == "lower":
                    assert name == name.lower()


def test_batch_and_sagemaker_rules_from_the_api_reference():
    name = resource_name("batch_job", "pose_training", RUN_IDS[0])
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", name)
    name = resource_name("sagemaker_training_job", "pose_training", RUN_IDS[0], "x" * 100)
    assert "_" not in name and len(name) <= 63 and not name.endswith("-")


def test_names_are_readable_and_carry_the_hash():
    name = resource_name("batch_job", "pose_training", "manual__2026-11-21T10:00:00.123456+00:00", "train")
    assert re.fullmatch(r"pose_training-manual-20261121T100000-train-[0-9a-f]{10}", name)
    name = resource_name("sagemaker_training_job", "aerial_pretraining", RUN_IDS[0], "dino")
    assert name.startswith("aerial-pretraining-manual-20261121t100000-dino-")


def test_asset_triggered_run_ids():
    run_id = "asset_triggered__2026-11-21T10:00:00.123456+00:00_AbCdEf12"
    assert naming.run_part(run_id) == "asset-20261121T100000-AbCdEf12"
    name = resource_name("sagemaker_training_job", "fruit_features", run_id)
    assert name.startswith("fruit-features-asset-20261121t100000-abcdef12-")
    # Two asset-triggered runs in the same microsecond differ only by Airflow's random suffix.
    other = resource_name("sagemaker_training_job", "fruit_features", run_id[:-8] + "ZyXwVu98")
    assert other != name


def test_deterministic():
    for kind in RULES:
        first = resource_name(kind, "pose_training", RUN_IDS[2], "train")
        assert resource_name(kind, "pose_training", RUN_IDS[2], "train") == first


def test_inputs_that_sanitise_alike_do_not_collide():
    for kind in NAME_KINDS:
        names = {
            resource_name(kind, "pose_training", run_id)
            for run_id in ("retrain_v2", "retrain-v2", "retrain.v2", "Retrain_V2", "retrain v2")
        }
        assert len(names) == 5, kind
        suffixes = {
            resource_name(kind, "pose_training", RUN_IDS[0], sfx) for sfx in ("", "a_b", "a-b", "A_B")
        }
        assert len(suffixes) == 4, kind


def test_no_collisions_for_10k_runs_sharing_a_long_prefix():
    prefix = "manual__2026-11-21T10:00:00.123456+00:00_" + "same-long-prefix-" * 20
    run_ids = [f"{prefix}{i:05d}" for i in range(10_000)]
    for kind in NAME_KINDS + ["s3_prefix"]:
        names = {resource_name(kind, "aerial_pretraining", run_id, "dino") for run_id in run_ids}
        assert len(names) == len(run_ids), kind
    # The difference sits past every truncation point: only the hash tells these names apart.
    first, second = (
        resource_name("sagemaker_training_job", "aerial_pretraining", r, "dino") for r in run_ids[:2]
    )
    assert first[:-10] == second[:-10] and first != second


def test_dag_id_is_part_of_the_identity():
    assert resource_name("iot_job", "dag_a", RUN_IDS[0]) != resource_name("iot_job", "dag_b", RUN_IDS[0])
    long_a, long_b = "d" * 240 + "a", "d" * 240 + "b"
    assert resource_name("sagemaker_endpoint", long_a, "r") != resource_name(
        "sagemaker_endpoint", long_b, "r"
    )


def test_secret_names_never_end_in_a_six_character_arn_suffix():
    for run_id in RUN_IDS + ["manual__x-abcdef"]:
        name = resource_name("secret", "edge_deployment", run_id, "device-key-ab12cd")
        assert not re.search(r"-[A-Za-z0-9]{6}$", name), name


def test_s3_prefix_layout():
    prefix = resource_name("s3_prefix", "pose_training", RUN_IDS[0])
    assert re.fullmatch(r"pose_training/manual-20261121t100000-[0-9a-f]{10}/", prefix)
    nested = resource_name("s3_prefix", "pose_training", RUN_IDS[0], "Figures/Epoch 1")
    assert nested == prefix + "figures/epoch-1/"
    assert re.fullmatch(RULES["s3_prefix"].pattern, nested)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "dag", "run"), "unknown resource kind 'nope'"),
        (("batch_job", "", "run"), "dag_id"),
        (("batch_job", "dag", ""), "run_id"),
        (("batch_job", "dag", "   "), "run_id"),
        (("batch_job", None, "run"), "dag_id"),
        (("batch_job", "dag", "run", None), "suffix"),
    ],
)
def test_bad_inputs_raise_a_clear_value_error(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resource_name(*args)


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(ValueError, match="sagemaker_training_job"):
        resource_name("sagemaker_job", "dag", "run")


def test_macro_in_a_template():
    template = jinja2.Template("{{ aws_name('batch_job', dag_id, run_id, 'train') }}")
    rendered = template.render(dag_id="pose_training", run_id=RUN_IDS[0], **MACROS)
    assert rendered == resource_name("batch_job", "pose_training", RUN_IDS[0], "train")
    assert MACROS["aws_name"] is resource_name
