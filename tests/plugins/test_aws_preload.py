"""orchard.aws_preload and orchard.preload_freeze: a task process forked from the scheduler's forkserver
inherits orchard's shared botocore loader already filled, and the preloaded objects frozen."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

from local_aws import CLIENT_ENV
from local_aws.stack.environment import TASK_PRELOAD_MODULES, airflow_env
from orchard.aws_preload import TASK_SERVICES

REPO_ROOT = Path(__file__).resolve().parents[2]
CODE = [*(REPO_ROOT / "plugins").rglob("*.py"), *(REPO_ROOT / "dags").rglob("*.py")]
# a literal service name given to a client or a hook: .client("s3"), _service_client("iam"),
# client_type="kms", kwargs["client_type"] = "iot"
LITERAL_SERVICE = re.compile(r'(?:client\(\s*|client_type"?\]?\s*=\s*)"([a-z0-9-]+)"')
# several on one session: aws.clients("batch", "ec2", conn_id=...)
SESSION_CLIENTS = re.compile(r"\bclients\(([^)]*)\)")
QUOTED = re.compile(r'"([a-z0-9-]+)"')
PROVIDER_HOOKS = re.compile(
    r"from airflow\.providers\.amazon\.aws\.hooks\.(\w+) import (\([\w,\s]+\)|[\w, ]+)"
)

# Run in a process of its own with the stack's environment: the scheduler's forkserver, started the way the
# scheduler starts it (Airflow's set_component_mp_start_method), and a task process forked from it that makes
# its first clients, each with a paginator's and the waiters' models, and S3's boto3 resource.
FORKSERVER_PROBE = """
import gc, json, multiprocessing, sys


def first_clients(services, results):
    import botocore
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from botocore.loaders import JSONFileLoader

    parsed = []
    load_file = JSONFileLoader.load_file

    def counting(self, file_path):
        data = load_file(self, file_path)
        if data is not None:
            parsed.append(file_path)
        return data

    JSONFileLoader.load_file = counting
    operation_names = len(botocore._xform_cache)
    for service in services:
        client = AwsBaseHook(aws_conn_id=None, client_type=service).conn
        client.waiter_names
        client.can_paginate(next(iter(client.meta.method_to_api_mapping)))
    new_operation_names = len(botocore._xform_cache) - operation_names
    AwsBaseHook(aws_conn_id=None, resource_type="s3").get_resource_type("s3")
    results.put({"parsed": parsed, "new_operation_names": new_operation_names, "frozen": gc.get_freeze_count()})


if __name__ == "__main__":
    from airflow.utils.process_utils import set_component_mp_start_method

    set_component_mp_start_method("scheduler")
    results = multiprocessing.Queue()
    task = multiprocessing.Process(target=first_clients, args=(json.loads(sys.argv[1]), results))
    task.start()
    print(json.dumps(results.get(timeout=300)))
    task.join()
"""


def _services_named_in_code() -> set[str]:
    named, hooks = set(), set()
    for path in CODE:
        text = path.read_text()
        named.update(LITERAL_SERVICE.findall(text))
        for arguments in SESSION_CLIENTS.findall(text):
            named.update(QUOTED.findall(arguments))
        for module, names in PROVIDER_HOOKS.findall(text):
            hooks.update(
                (module, name.strip())
                for name in names.strip("()").split(",")
                if name.strip().endswith("Hook")
            )
    for module, name in hooks:
        hook_class = getattr(importlib.import_module(f"airflow.providers.amazon.aws.hooks.{module}"), name)
        if issubclass(hook_class, AwsGenericHook):
            client_type = hook_class(aws_conn_id=None).client_type
            named.update([client_type] if client_type else [])
    return named


def test_the_warmed_services_are_the_ones_the_code_calls():
    # sts: the stack's connection has a role_arn, so every hook's session first calls AssumeRole
    assert set(TASK_SERVICES) == _services_named_in_code() | {"sts"}


def test_the_stack_preloads_them_after_airflow_and_freezes_last():
    # plugins/ is on the forkserver's sys.path only once an Airflow module is imported (Airflow's settings)
    assert TASK_PRELOAD_MODULES.index("orchard.aws_preload") > 0
    assert TASK_PRELOAD_MODULES[-1] == "orchard.preload_freeze"


def test_a_task_forked_from_the_forkserver_parses_no_botocore_json(tmp_path):
    env = airflow_env(tmp_path, REPO_ROOT / "dags")
    env.update(CLIENT_ENV, ORCHARD_PARAM_DEFAULTS="")
    probe = tmp_path / "forkserver_probe.py"
    probe.write_text(FORKSERVER_PROBE)
    run = subprocess.run(
        [sys.executable, str(probe), json.dumps(TASK_SERVICES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["parsed"] == []
    assert found["new_operation_names"] == 0  # botocore.xform_name's cache, warmed too
    assert found["frozen"] > 0
