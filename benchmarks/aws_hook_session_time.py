"""What an Amazon-provider hook costs a task process before its first call: N × (hook → session → 2 clients)
in a fresh process, with the provider's default session factory vs orchard's (one botocore data loader per
process, plugins/orchard/aws_session.py), against the sandbox.

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/aws_hook_session_time.py [--hooks 4] [--rounds 7] [--no-role]

Each sample is a new Python process (as each task is) that imports the provider first, untimed, then times
`--hooks` hooks on `aws_default`, each: AwsBaseHook → get_session() → a SageMaker and an S3 client. The
connection carries a `role_arn`, as the local stack's does (AssumeRole: a session for the connection's
keys, one for the role); `--no-role` leaves it out. The two factories alternate within each round; the
figure is the median over rounds of each, and the median of the per-round ratios orchard / default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "plugins"):
    sys.path.insert(0, str(path))

FACTORY = "orchard.aws_session.SharedLoaderSessionFactory"
DEFAULT_FACTORY = "airflow.providers.amazon.aws.hooks.base_aws.BaseSessionFactory"
SERVICES = ("sagemaker", "s3")
ROLE_NAME = "bench-hook-session"


def time_hooks(hooks: int) -> tuple[str, list[float]]:
    """In the child process: the factory `[aws] session_factory` resolved to, and the seconds of each of
    `hooks` × (hook → session → the SERVICES' clients)."""
    from _hook_clients import hook_session_clients
    from airflow.providers.amazon.aws.hooks.base_aws import SessionFactory

    seconds = []
    for _ in range(hooks):
        started = time.perf_counter()
        hook_session_clients(SERVICES)
        seconds.append(time.perf_counter() - started)
    return f"{SessionFactory.__module__}.{SessionFactory.__name__}", seconds


def create_role() -> str:
    """A role the sandbox's administrator key may assume (its account trusted)."""
    import boto3

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = boto3.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    return role["Role"]["Arn"]


def sample(hooks: int, env: dict[str, str], factory: str) -> list[float]:
    """One fresh process: the seconds of each hook, in order."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--hooks", str(hooks)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    resolved, *seconds = out.strip().splitlines()[-1].split()
    if resolved != factory:
        raise RuntimeError(f"the child used {resolved}, not {factory}")
    return [float(x) for x in seconds]


def report(name: str, samples: list[list[float]]) -> None:
    totals = [sum(hooks) for hooks in samples]
    later = [statistics.median(hooks[1:]) for hooks in samples if len(hooks) > 1]
    line = f"  {name}: {statistics.median(totals):.3f} s in all; first hook {statistics.median(h[0] for h in samples):.3f} s"
    if later:
        line += f", each later hook {statistics.median(later):.3f} s"
    print(line)


def ratio(samples: dict[str, list[list[float]]], of) -> float:
    """Median over rounds of orchard / default for `of(one process's hook seconds)`."""
    pairs = zip(samples["orchard"], samples["default"], strict=True)
    return statistics.median(of(o) / of(d) for o, d in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hooks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--latency-ms", type=int, default=0, help="the sandbox's injected latency")
    parser.add_argument("--no-role", action="store_true", help="a connection without role_arn")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        factory, seconds = time_hooks(args.hooks)
        print(factory, *seconds)
        return

    from _bench_sandbox import start_sandbox

    from local_aws import aws_connection

    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    sandbox, url = start_sandbox(args.latency_ms)
    try:
        role_arn = None if args.no_role else create_role()
        env = {
            **{k: v for k, v in os.environ.items() if k != "AIRFLOW__AWS__SESSION_FACTORY"},
            "AIRFLOW_HOME": tempfile.mkdtemp(prefix="orchard-hook-bench-"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(url, role_arn=role_arn),
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
        }
        arms = {"default": env, "orchard": {**env, "AIRFLOW__AWS__SESSION_FACTORY": FACTORY}}
        factories = {"default": DEFAULT_FACTORY, "orchard": FACTORY}
        times: dict[str, list[list[float]]] = {name: [] for name in arms}
        for round_ in range(args.rounds):
            order = list(arms) if round_ % 2 == 0 else list(reversed(arms))
            for name in order:
                times[name].append(sample(args.hooks, arms[name], factories[name]))
            print(
                f"round {round_ + 1}: " + ", ".join(f"{n} {sum(times[n][-1]):.3f} s" for n in arms),
                flush=True,
            )
    finally:
        sandbox.terminate()
        sandbox.wait()
    what = f"{args.hooks} × (hook → session → {' + '.join(SERVICES)} clients)"
    role = "no role" if args.no_role else "AssumeRole"
    print(f"{what}, {role}, median of {args.rounds} fresh processes each:")
    for name in arms:
        report(name, times[name])
    print(f"  orchard / default, median of the per-round ratios: in all {ratio(times, sum):.2f}", end="")
    if args.hooks > 1:
        print(f"; each later hook {ratio(times, lambda hooks: statistics.median(hooks[1:])):.2f}", end="")
    print()
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
