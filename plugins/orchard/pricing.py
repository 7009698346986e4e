"""On-demand hourly prices (USD) of the instance types orchard's pipelines use, per region, dated.

One small table behind every run report's cost estimate: hourly price x billable seconds AWS reports.
It is an estimate, not a bill: no storage, data transfer, request or Savings Plan effects.

Sources and confidence (prices as of PRICES_AS_OF):
* us-east-1: public on-demand list prices (aws.amazon.com/ec2/pricing/on-demand, /sagemaker/pricing,
  /emr/pricing; Linux, shared tenancy; SageMaker training/processing rates), cross-checked against
  several independent price tables.
* eu-west-1 and eu-west-3: the lines marked ``# est.`` are estimates (best knowledge: the us-east-1 price
  times that region's usual EC2 multiplier), not read off a price page. Refresh them from the AWS Price List
  API (``aws pricing get-products``) before relying on them.
* ml.p3.* are not offered in eu-west-3 (Paris): asking for them raises ``PriceNotFound``.

Services: ``sagemaker`` (``ml.*`` types), ``ec2`` and ``batch`` (Batch adds no charge over EC2),
``emr`` (EC2 price + the EMR uplift in ``EMR_UPLIFT``).

Per-unit prices (``PER_UNIT``, ``unit_price``): what is billed per request, per object or per month rather
than per instance-hour (IoT job executions, Secrets Manager secrets, KMS requests, Ground Truth objects),
us-east-1 list prices from each service's price page (named at its entry), as of PRICES_AS_OF.
"""

from __future__ import annotations

PRICES_AS_OF = "2026-11-01"
PRICE_SOURCE = (
    "AWS public on-demand list prices (Linux, shared tenancy); eu-west-1/eu-west-3 entries partly estimated"
)

# region -> instance type -> USD per instance-hour
EC2: dict[str, dict[str, float]] = {
    "us-east-1": {
        "g4dn.xlarge": 0.526,
        "g5.xlarge": 1.006,
        "g6.xlarge": 0.8048,
        "m5.xlarge": 0.192,
        "m5.2xlarge": 0.384,
    },
    "eu-west-1": {
        "g4dn.xlarge": 0.587,
        "g5.xlarge": 1.123,
        "g6.xlarge": 0.898,  # est.
        "m5.xlarge": 0.214,
        "m5.2xlarge": 0.428,
    },
    "eu-west-3": {
        "g4dn.xlarge": 0.615,  # est.
        "g5.xlarge": 1.179,  # est.
        "g6.xlarge": 0.943,  # est.
        "m5.xlarge": 0.224,
        "m5.2xlarge": 0.448,
    },
}

SAGEMAKER: dict[str, dict[str, float]] = {
    "us-east-1": {
        "ml.p4d.24xlarge": 37.688,
        "ml.p3.16xlarge": 28.152,
        "ml.p3.8xlarge": 14.688,
        "ml.p3.2xlarge": 3.825,
        "ml.g5.xlarge": 1.408,
        "ml.g5.2xlarge": 1.515,
        "ml.g4dn.xlarge": 0.736,
        "ml.m5.xlarge": 0.23,
        "ml.m5.large": 0.115,
        "ml.c5.xlarge": 0.204,
    },
    "eu-west-1": {  # est. throughout: us-east-1 x the EC2 eu-west-1/us-east-1 ratio of the family
        "ml.p4d.24xlarge": 40.703,
        "ml.p3.16xlarge": 30.404,
        "ml.p3.8xlarge": 15.863,
        "ml.p3.2xlarge": 4.131,
        "ml.g5.xlarge": 1.572,
        "ml.g5.2xlarge": 1.691,
        "ml.g4dn.xlarge": 0.822,
        "ml.m5.xlarge": 0.256,
        "ml.m5.large": 0.128,
        "ml.c5.xlarge": 0.23,
    },
    "eu-west-3": {  # est. throughout, as above; no P3 in Paris
        "ml.g5.xlarge": 1.650,
        "ml.g5.2xlarge": 1.775,
        "ml.g4dn.xlarge": 0.861,
        "ml.m5.xlarge": 0.268,
        "ml.m5.large": 0.134,
        "ml.c5.xlarge": 0.242,
    },
}

# EMR's charge on top of the EC2 price, per instance-hour.
EMR_UPLIFT: dict[str, dict[str, float]] = {
    "us-east-1": {
        "g4dn.xlarge": 0.1315,
        "g5.xlarge": 0.2515,
        "g6.xlarge": 0.2012,  # est.: EMR's usual 25% of the EC2 price
        "m5.xlarge": 0.048,
        "m5.2xlarge": 0.096,
    },
    "eu-west-1": {  # est.: 25% of the EC2 price, as in us-east-1
        "g4dn.xlarge": 0.1468,
        "g5.xlarge": 0.2808,
        "g6.xlarge": 0.2245,
        "m5.xlarge": 0.054,
        "m5.2xlarge": 0.107,
    },
    "eu-west-3": {  # est., as above
        "g4dn.xlarge": 0.1538,
        "g5.xlarge": 0.2948,
        "g6.xlarge": 0.2358,
        "m5.xlarge": 0.056,
        "m5.2xlarge": 0.112,
    },
}

# region -> item -> USD per unit (the unit is the item name's last word). us-east-1 only: the other regions'
# per-unit prices are not read off their pages yet, and a report says which region its prices are from.
PER_UNIT: dict[str, dict[str, float]] = {
    "us-east-1": {
        # IoT Device Management, remote actions (one per job execution): aws.amazon.com/iot-device-management/pricing
        "iot_job_execution": 0.0036,
        # Secrets Manager, per secret per month: aws.amazon.com/secrets-manager/pricing
        "secretsmanager_secret_month": 0.40,
        # KMS, asymmetric requests (Sign / Verify): USD 0.15 per 10,000: aws.amazon.com/kms/pricing
        "kms_asymmetric_request": 0.15 / 10_000,
        # Ground Truth, per labeled object, the first 50,000 objects a month: aws.amazon.com/sagemaker/groundtruth/pricing
        "groundtruth_object": 0.08,
    },
}
PER_UNIT_REGION = "us-east-1"  # the one region PER_UNIT has read off the price pages
HOURS_PER_MONTH = 730  # AWS prorates monthly prices over 730 hours

# Types AWS does not offer in a region (as opposed to ones this table lacks).
NOT_OFFERED: dict[str, frozenset[str]] = {
    "eu-west-3": frozenset({"ml.p3.2xlarge", "ml.p3.8xlarge", "ml.p3.16xlarge"})
}

_TABLES = {"sagemaker": SAGEMAKER, "ec2": EC2, "batch": EC2, "emr": EC2}
SERVICES = tuple(_TABLES)


class PriceNotFound(KeyError):
    """No price for this service / instance type / region; the message says which part is missing."""

    def __str__(self) -> str:  # KeyError would repr() the message, quotes and all
        return str(self.args[0]) if self.args else ""


def hourly_price(service: str, instance_type: str, region: str) -> float:
    """On-demand USD per instance-hour; for ``emr`` the EC2 price plus the EMR uplift."""
    table = _table(service)
    price = _lookup(table, service, instance_type, region)
    if service == "emr":
        price += _lookup(EMR_UPLIFT, "emr (uplift)", instance_type, region)
    return price


def estimate_cost(
    service: str,
    instance_type: str,
    region: str,
    billable_seconds: float,
    instance_count: int = 1,
    spot_savings: float = 0.0,
) -> float:
    """USD for ``instance_count`` instances billed ``billable_seconds`` each.

    ``spot_savings`` is the fraction of the on-demand price saved (0.7 = paid 30%). It applies to the
    instance price only, not to EMR's uplift. Leave it at 0 where AWS already reports discounted billable
    seconds (SageMaker managed spot training's BillableTimeInSeconds).
    """
    if billable_seconds < 0:
        raise ValueError(f"billable_seconds must be >= 0, got {billable_seconds}")
    if int(instance_count) != instance_count or instance_count < 1:
        raise ValueError(f"instance_count must be a whole number >= 1, got {instance_count}")
    if not 0.0 <= spot_savings < 1.0:
        raise ValueError(f"spot_savings must be in [0, 1), got {spot_savings}")
    base = _lookup(_table(service), service, instance_type, region) * (1.0 - spot_savings)
    uplift = _lookup(EMR_UPLIFT, "emr (uplift)", instance_type, region) if service == "emr" else 0.0
    return (base + uplift) * instance_count * billable_seconds / 3600.0


def unit_price(item: str, region: str = PER_UNIT_REGION) -> float:
    """List USD per unit of a per-unit ``item`` (``PER_UNIT``), e.g. ``unit_price("iot_job_execution")``."""
    prices = PER_UNIT.get(region)
    if prices is None:
        raise PriceNotFound(
            f"no per-unit prices for region {region!r} (table dated {PRICES_AS_OF}); "
            f"regions: {', '.join(sorted(PER_UNIT))}"
        )
    if item not in prices:
        raise PriceNotFound(
            f"no per-unit price for {item!r} in {region}; priced: {', '.join(sorted(prices))}"
        )
    return prices[item]


def _table(service: str) -> dict[str, dict[str, float]]:
    try:
        return _TABLES[service]
    except (KeyError, TypeError):
        raise PriceNotFound(f"no prices for service {service!r}; known: {', '.join(SERVICES)}") from None


def _lookup(table: dict[str, dict[str, float]], service: str, instance_type: str, region: str) -> float:
    if region not in table:
        raise PriceNotFound(
            f"no {service} prices for region {region!r} (table dated {PRICES_AS_OF}); "
            f"regions: {', '.join(sorted(table))}"
        )
    prices = table[region]
    if instance_type in prices:
        return prices[instance_type]
    if instance_type in NOT_OFFERED.get(region, ()):
        raise PriceNotFound(
            f"{instance_type} is not offered in {region} (as of {PRICES_AS_OF}): no price to use"
        )
    hint = ""
    if service == "sagemaker" and not instance_type.startswith("ml."):
        hint = f" (SageMaker types start with 'ml.': did you mean 'ml.{instance_type}'?)"
    elif service != "sagemaker" and instance_type.startswith("ml."):
        hint = f" ('ml.' types are SageMaker's: did you mean service 'sagemaker' or '{instance_type[3:]}'?)"
    raise PriceNotFound(
        f"no {service} price for instance type {instance_type!r} in {region} "
        f"(table dated {PRICES_AS_OF}){hint}; "
        f"priced there: {', '.join(sorted(prices))}"
    )
