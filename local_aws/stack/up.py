"""`make up`: the stack with the web UI, until stopped."""

from __future__ import annotations

import json
import time

from local_aws import DEFAULT_PORT
from local_aws.stack.dags import list_dags
from local_aws.stack.environment import (
    ADMIN_USER,
    DEFAULT_API_PORT,
    _shown,
    admin_password,
    airflow_home,
    dags_folder,
    password_file,
)
from local_aws.stack.errors import Interrupted, StackError
from local_aws.stack.ports import pick_port, port_is_free
from local_aws.stack.processes import Stack, _signals_as_interrupts

def run_up(
    *,
    sandbox_port: int = DEFAULT_PORT,
    api_port: int = DEFAULT_API_PORT,
    api_host: str = "127.0.0.1",
    schedules: bool = False,
    say=print,
) -> int:
    """`make up`: the stack in the foreground, web UI on http://localhost:8080, until Ctrl-C."""
    if not port_is_free(api_port, api_host):
        raise StackError(f"up: port {api_port} is in use; stop what runs there or pass --port")
    folder = dags_folder()
    home = airflow_home()
    stack = Stack(
        home=home,
        dags=folder,
        sandbox_port=pick_port(sandbox_port),
        api_port=api_port,
        api_host=api_host,
        schedules=schedules,
        say=say,
    )
    with _signals_as_interrupts():
        try:
            stack.start()
            found = list_dags(folder, stack.env())
            confs = stack.seed(found.dags)
            say("")
            say(f"up: Airflow UI   {stack.ui_url}")
            say(f"up: log in as    {ADMIN_USER} / {admin_password(home)}"
                f"   (password kept in {_shown(password_file(home))})")
            say(f"up: sandbox      {stack.sandbox_url}   (AWS_ENDPOINT_URL={stack.sandbox_url}, "
                "AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing)")
            say(f"up: DAGs         {', '.join(found.dags) or f'none in {_shown(folder)}/ yet'}")
            for dag_id, conf in confs.items():
                if conf:
                    say(f"up: demo data for {dag_id} is uploaded; trigger it with conf {json.dumps(conf)}")
            if found.import_errors:
                say(f"up: import errors in {', '.join(found.import_errors)} (see the UI)")
            if schedules:
                say("up: schedules and Asset triggers are on. Ctrl-C stops everything.")
            else:
                say("up: schedules and Asset triggers are off (--schedules turns them on): trigger DAGs from "
                    "the UI. Ctrl-C stops everything.")
            while True:
                dead = stack.dead_children()
                if dead:
                    stack._check_alive(dead[0])
                time.sleep(1)
        except (KeyboardInterrupt, Interrupted):
            say("")
            say("up: stopping")
            return 0
        finally:
            stack.stop()
