"""The run report's Ground Truth cost: its per-object price comes from orchard.pricing."""

from __future__ import annotations

from orchard.auto_labeling.report import _add_costs
from orchard.pricing import unit_price
from orchard.reports import Report


def test_ground_truth_is_priced_per_labeled_object_from_orchard_pricing():
    report = Report("auto labeling", "auto_labeling", "manual__1")
    plan = {"owned": False, "region": "us-east-1"}  # someone else's endpoint: not this run's cost
    verified = {"job_name": "al-verify", "verified": 900, "adjusted": 80, "rejected": 20}

    _add_costs(report, plan, {}, verified)

    per_object = unit_price("groundtruth_object")
    assert per_object == 0.08
    text = report.to_markdown()
    assert (
        f"Ground Truth: 1000 objects × ${per_object:.2f} ≈ ${1000 * per_object:,.2f} (us-east-1 list price"
        in text
    )


def test_ground_truth_cost_counts_in_the_runs_total():
    """The total the Asset event, the run note and the Reports page show (cost_usd) includes Ground Truth's
    per-object charge, next to the endpoint's instance cost."""
    report = Report("auto labeling", "auto_labeling", "manual__1")
    plan = {"owned": True, "region": "us-east-1", "endpoint_name": "al-ep", "instance_type": "ml.g4dn.xlarge"}
    collected = {"endpoint_seconds": 3600}
    verified = {"job_name": "al-verify", "verified": 90, "adjusted": 8, "rejected": 2}

    _add_costs(report, plan, collected, {})
    endpoint_only = report.cost_usd
    report = Report("auto labeling", "auto_labeling", "manual__1")
    _add_costs(report, plan, collected, verified)

    assert endpoint_only > 0
    assert report.cost_usd == round(endpoint_only + 100 * unit_price("groundtruth_object"), 6)
