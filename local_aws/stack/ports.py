"""The ports the stack listens on."""

from __future__ import annotations

import socket


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `port` (as uvicorn and werkzeug do: SO_REUSEADDR, so a port
    whose last connections are in TIME_WAIT counts as free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """`preferred` when nothing listens on it, else a free port the OS picks."""
    if preferred and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers(port: int, host: str = "127.0.0.1", timeout_s: float = 1.0) -> bool:
    """Whether something accepts a TCP connection on `host:port` (a listener on any address, IPv6's
    included, that a bind test on one address can miss)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def who_listens(port: int) -> str:
    """What answers on `port`, as far as the stack can tell: a moto sandbox, an Airflow api-server."""
    import urllib.request

    probes = (
        (
            "/moto-api/data.json",
            "a local AWS sandbox (moto) answers there: another `make up` / `make sandbox`, "
            "or another project's sandbox",
        ),
        ("/api/v2/monitor/health", "an Airflow api-server answers there: another `make up` or `make demo`"),
    )
    for path, what in probes:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                if response.status == 200:
                    return what
        except (OSError, ValueError):
            continue
    return "something else listens there"


def claim_port(port: int, role: str, fix: str, host: str = "127.0.0.1") -> int:
    """The port a server of the stack will listen on: `port` when it is free, any free port for 0.

    The stack owns its ports: one in use is an error naming it and what answers there, never a server
    of someone else's that the stack would then talk to (issue 14.4). `fix` says how to choose another.
    """
    if port == 0:
        return pick_port(0, host)
    if port_is_free(port, host) and not answers(port):
        return port
    from local_aws.stack.errors import StackError

    raise StackError(f"port {port} ({role}) is in use — {who_listens(port)}.\n{fix}")


def attach_requested() -> bool:
    """SANDBOX_ATTACH=1 (or true/yes): use the sandbox already running on the sandbox port."""
    import os

    return os.environ.get("SANDBOX_ATTACH", "").strip().lower() in ("1", "true", "yes")


def claim_stack_ports(
    command: str, sandbox_port: int, api_port: int, api_host: str = "127.0.0.1", attach: bool = False
) -> tuple[int, int]:
    """The (sandbox, api-server) ports of `make <command>`, each free or an error naming it and the fix.
    With `attach`, the sandbox port is not claimed: the sandbox already there is used."""
    if attach and sandbox_port == 0:
        from local_aws.stack.errors import StackError

        raise StackError(
            f"{command}: SANDBOX_ATTACH=1 needs the running sandbox's port (SANDBOX_PORT=...), not 0"
        )
    if not attach:
        sandbox_port = claim_port(
            sandbox_port,
            "the local AWS sandbox",
            f"Stop what runs there, choose another port (make {command} SANDBOX_PORT=4567, 0: any free one), "
            f"or use the sandbox running there: make {command} SANDBOX_ATTACH=1",
        )
    api_port = claim_port(
        api_port,
        "the Airflow api-server / web UI",
        f"Stop what runs there (`make stop` if it is `make up`), or choose another port: "
        f"make {command} PORT=8081 (0 for any free one)",
        api_host,
    )
    return sandbox_port, api_port
