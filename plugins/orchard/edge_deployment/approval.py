"""The human gate before a rollout to a real fleet: what the person is asked, and what their answer does.

``approve_rollout`` (orchard.operators.approval) sits between ``ensure_fleet`` and ``deploy``. It asks only
for real devices: a run with ``simulated_devices`` (the sandbox's simulated cameras) goes ahead, like a run
with ``require_approval`` off. A Reject or a timeout skips ``deploy`` (and so ``monitor``): nothing is
deployed, the cleanup removes a fleet this run created, and the report says why; the run ends green
(skipped tasks are no failure: orchard.run_results.failure_causes reads real task states).
"""

from __future__ import annotations

from typing import Any

from orchard.operators.approval import outcome_note

# The operator's templated `required` and its reason when it renders false.
REQUIRED = "{{ params.require_approval and not params.simulated_devices }}"
NOT_REQUIRED_BECAUSE = (
    "{{ 'simulated_devices is on (the sandbox runs the devices: no real fleet)' if params.simulated_devices "
    "else 'require_approval is off (an automated run)' }}"
)


def request(package: dict[str, Any], fleet: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    """The approval's subject and Markdown body: the model, its package, the fleet and the rollout policy."""
    devices = [d["thing_name"] for d in fleet["devices"]]
    model = f"{params['model_name']} {params['model_version']}"
    body = "\n".join(
        [
            f"Deploy **{model}** ({params['framework']}, compiled for `{params['target_device']}`, "
            f"quantization {params['quantization']}) to fleet **{fleet['fleet_name']}**?",
            "",
            f"- Package: `{package['package_uri']}` ({package['size_bytes']:,} bytes, sha256 "
            f"`{package['sha256'][:16]}...`, KMS-signed)",
            f"- Thing group: `{fleet['thing_group_arn']}`",
            f"- Devices ({len(devices)}): {', '.join(devices[:20])}{' ...' if len(devices) > 20 else ''}",
            f"- Rollout: at most {params['max_devices_per_minute']} devices/min; judged after "
            f"{params['rollout_window_minutes']} min, needs {params['min_success_percent']} % SUCCEEDED; "
            f"aborts at {params['abort_failure_percent']} % failed",
            "",
            f"**Approve** starts the IoT job. **Reject**, or no answer within {params['approval_timeout_hours']}"
            " h, deploys nothing; a fleet this run created is removed, the run reports why and ends green.",
        ]
    )
    subject = f"Deploy {model} to {fleet['fleet_name']} ({len(devices)} devices)?"
    return {"subject": subject, "body": body}


def refused(outcome: dict[str, Any] | None) -> list[str]:
    """``["approve_rollout (<why>)"]`` when the rollout was refused: the cleanup then treats the deploy
    path as not gone through (a fleet this run created is removed); ``[]`` otherwise."""
    note = outcome_note(outcome)
    return [f"approve_rollout ({note})"] if note else []


def attention(outcome: dict[str, Any] | None) -> list[str]:
    note = outcome_note(outcome)
    return [f"not deployed: {note}"] if note else []


def report_text(outcome: dict[str, Any] | None) -> str | None:
    """The report's "Rollout approval" section, or None when no approval ran (the run ended before it)."""
    if not outcome:
        return None
    if outcome_note(outcome):
        what = f"**Not deployed**: {outcome['note']}. A fleet this run created was removed (Fleet deletion)."
    else:
        what = outcome["note"][:1].upper() + outcome["note"][1:] + "."
    return f"## Rollout approval\n\n{what}"
