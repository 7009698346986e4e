"""orchard.caller_preload: a task process forked from the scheduler's forkserver inherits inspect's file →
module map of the preloaded modules, so the provider's user-agent stack walk maps none of them again."""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

from local_aws import CLIENT_ENV
from local_aws.stack.environment import TASK_PRELOAD_MODULES, airflow_env
from orchard import caller_preload

REPO_ROOT = Path(__file__).resolve().parents[2]

# Run in a process of its own with the stack's environment: the scheduler's forkserver, started the way the
# scheduler starts it, and a task process forked from it whose operator's `execute` makes its first client.
FORKSERVER_PROBE = """
import inspect, json, multiprocessing, sys


class ProbeOperator:
    def execute(self, results):
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        mapped = set(inspect.modulesbyfile.values())
        client = AwsBaseHook(aws_conn_id=None, client_type="s3").conn
        results.put(
            {
                "newly_mapped": sorted(set(inspect.modulesbyfile.values()) - mapped),
                "user_agent": client.meta.config.user_agent_extra,
            }
        )


def task(results):
    ProbeOperator().execute(results)


if __name__ == "__main__":
    from airflow.utils.process_utils import set_component_mp_start_method

    set_component_mp_start_method("scheduler")
    results = multiprocessing.Queue()
    process = multiprocessing.Process(target=task, args=(results,))
    process.start()
    print(json.dumps(results.get(timeout=300)))
    process.join()
"""


def test_the_stack_preloads_it_last_before_the_freeze():
    # after every module that imports others, so that the map holds them all
    assert TASK_PRELOAD_MODULES[-2:] == ("orchard.caller_preload", "orchard.preload_freeze")
    assert TASK_PRELOAD_MODULES.index("orchard.aws_preload") < TASK_PRELOAD_MODULES.index(
        "orchard.caller_preload"
    )


def test_a_tasks_first_client_maps_no_preloaded_module_and_still_names_its_operator(tmp_path):
    env = airflow_env(tmp_path, REPO_ROOT / "dags")
    env.update(CLIENT_ENV, ORCHARD_PARAM_DEFAULTS="")
    probe = tmp_path / "forkserver_probe.py"
    probe.write_text(FORKSERVER_PROBE)
    run = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    # of the ~2,350 modules the forkserver imported, only the one imported after the warm-up
    assert set(found["newly_mapped"]) & set(TASK_PRELOAD_MODULES) == {"orchard.preload_freeze"}
    assert not [
        name for name in found["newly_mapped"] if name.startswith(("airflow.", "boto", "matplotlib."))
    ]
    assert "Caller/ProbeOperator " in found["user_agent"]


def test_a_failed_warm_up_is_logged_and_does_not_stop_the_forkserver(monkeypatch, caplog):
    def fails(*_):
        raise RuntimeError("no map")

    monkeypatch.setattr(inspect, "getmodule", fails)
    with caplog.at_level(logging.ERROR, logger=caller_preload.__name__):
        caller_preload.warm()
    assert "inspect's module map stays empty" in caplog.text
