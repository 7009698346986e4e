"""orchard.pricing: the dated price table and the cost arithmetic behind every run report."""

from __future__ import annotations

import re
from datetime import date

import pytest

from orchard import pricing
from orchard.pricing import PriceNotFound, estimate_cost, hourly_price

REGIONS = ("us-east-1", "eu-west-1", "eu-west-3")
SAGEMAKER_TYPES = (
    "ml.p3.16xlarge",
    "ml.p3.2xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g4dn.xlarge",
    "ml.m5.xlarge",
    "ml.m5.large",
    "ml.c5.xlarge",
)
EC2_TYPES = ("g4dn.xlarge", "g5.xlarge", "g6.xlarge", "m5.xlarge", "m5.2xlarge")


def test_table_is_dated():
    assert date.fromisoformat(pricing.PRICES_AS_OF) == date(2026, 11, 1)
    assert pricing.PRICE_SOURCE


@pytest.mark.parametrize("region", REGIONS)
def test_every_pipeline_instance_type_is_priced_or_explicitly_not_offered(region):
    for instance_type in SAGEMAKER_TYPES:
        if instance_type in pricing.NOT_OFFERED.get(region, ()):
            with pytest.raises(PriceNotFound, match="not offered"):
                hourly_price("sagemaker", instance_type, region)
        else:
            assert 0 < hourly_price("sagemaker", instance_type, region) < 100
    for service in ("ec2", "batch", "emr"):
        for instance_type in EC2_TYPES:
            assert 0 < hourly_price(service, instance_type, region) < 10


def test_us_east_1_list_prices():
    assert hourly_price("sagemaker", "ml.p3.2xlarge", "us-east-1") == 3.825
    assert hourly_price("sagemaker", "ml.p3.16xlarge", "us-east-1") == 28.152
    assert hourly_price("ec2", "g4dn.xlarge", "us-east-1") == 0.526
    assert hourly_price("batch", "g4dn.xlarge", "us-east-1") == hourly_price(
        "ec2", "g4dn.xlarge", "us-east-1"
    )


def test_sanity_of_the_table():
    for region in REGIONS:
        # SageMaker's managed instances cost more than the same EC2 instance; EMR adds to EC2.
        assert hourly_price("sagemaker", "ml.g4dn.xlarge", region) > hourly_price(
            "ec2", "g4dn.xlarge", region
        )
        assert hourly_price("emr", "m5.xlarge", region) > hourly_price("ec2", "m5.xlarge", region)
        # Bigger sizes of a family cost more.
        assert hourly_price("ec2", "m5.2xlarge", region) > hourly_price("ec2", "m5.xlarge", region)
        assert hourly_price("sagemaker", "ml.m5.xlarge", region) > hourly_price(
            "sagemaker", "ml.m5.large", region
        )
        # Europe is not cheaper than N. Virginia for these types.
        if region != "us-east-1":
            assert hourly_price("ec2", "g5.xlarge", region) >= hourly_price("ec2", "g5.xlarge", "us-east-1")


def test_emr_is_ec2_plus_uplift():
    assert hourly_price("emr", "m5.xlarge", "us-east-1") == pytest.approx(0.192 + 0.048)


def test_estimate_cost_arithmetic():
    # One ml.p3.2xlarge for one hour is its hourly price.
    assert estimate_cost("sagemaker", "ml.p3.2xlarge", "us-east-1", 3600) == pytest.approx(3.825)
    # Two instances for half an hour cost the same.
    assert estimate_cost("sagemaker", "ml.p3.2xlarge", "us-east-1", 1800, instance_count=2) == pytest.approx(
        3.825
    )
    # 1834 s of Batch on g4dn.xlarge.
    assert estimate_cost("batch", "g4dn.xlarge", "us-east-1", 1834) == pytest.approx(0.526 * 1834 / 3600)
    # Spot: 70% saved on the instance price.
    assert estimate_cost("ec2", "g4dn.xlarge", "us-east-1", 3600, spot_savings=0.7) == pytest.approx(
        0.526 * 0.3
    )
    # EMR on spot: the EMR uplift is not discounted. 3 nodes for 20 minutes.
    got = estimate_cost("emr", "m5.xlarge", "us-east-1", 1200, instance_count=3, spot_savings=0.5)
    assert got == pytest.approx((0.192 * 0.5 + 0.048) * 3 * 1200 / 3600)
    assert estimate_cost("ec2", "m5.xlarge", "us-east-1", 0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"billable_seconds": -1},
        {"billable_seconds": 60, "instance_count": 0},
        {"billable_seconds": 60, "instance_count": 1.5},
        {"billable_seconds": 60, "spot_savings": 1.0},
        {"billable_seconds": 60, "spot_savings": -0.1},
    ],
)
def test_estimate_cost_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        estimate_cost("ec2", "m5.xlarge", "us-east-1", **kwargs)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("lambda", "m5.xlarge", "us-east-1"), ["service 'lambda'", "sagemaker"]),
        (("ec2", "m5.xlarge", "ap-south-1"), ["region 'ap-south-1'", pricing.PRICES_AS_OF]),
        (("ec2", "x9.huge", "us-east-1"), ["'x9.huge'", "m5.xlarge"]),
        (("sagemaker", "g5.xlarge", "us-east-1"), ["did you mean 'ml.g5.xlarge'"]),
        (("ec2", "ml.g5.xlarge", "us-east-1"), ["'sagemaker'", "'g5.xlarge'"]),
        (("sagemaker", "ml.p3.2xlarge", "eu-west-3"), ["not offered in eu-west-3"]),
    ],
)
def test_missing_prices_say_what_is_missing(args, needles):
    with pytest.raises(KeyError) as raised:
        hourly_price(*args)
    assert isinstance(raised.value, PriceNotFound)
    for needle in needles:
        assert needle in str(raised.value)
    assert not re.match(r"^['\"]", str(raised.value)), "the message must read as a sentence, not a repr"


def test_per_unit_list_prices_live_here_with_the_instance_prices():
    """edge's per-request prices and Ground Truth's per-object price: one table, same shape (region -> item)."""
    assert pricing.unit_price("iot_job_execution") == 0.0036
    assert pricing.unit_price("secretsmanager_secret_month") == 0.40
    assert pricing.unit_price("kms_asymmetric_request") == pytest.approx(0.15 / 10_000)
    assert pricing.unit_price("groundtruth_object", "us-east-1") == 0.08
    assert pricing.PER_UNIT_REGION in pricing.PER_UNIT and pricing.HOURS_PER_MONTH == 730


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("groundtruth_objects",), ["no per-unit price for 'groundtruth_objects'", "groundtruth_object"]),
        (("groundtruth_object", "eu-west-3"), ["no per-unit prices for region 'eu-west-3'", "us-east-1"]),
    ],
)
def test_a_missing_per_unit_price_says_what_is_missing(args, needles):
    with pytest.raises(PriceNotFound) as missing:
        pricing.unit_price(*args)
    assert all(needle in str(missing.value) for needle in needles)
