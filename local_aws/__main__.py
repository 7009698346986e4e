"""`python -m local_aws serve|demo|up` — see README."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from local_aws import DEFAULT_PORT


def serve(args: argparse.Namespace) -> int:
    from local_aws.server import Sandbox

    sandbox = Sandbox(host=args.host, port=args.port).start()
    print(f"local AWS sandbox on {sandbox.url} (AWS_ENDPOINT_URL={sandbox.url}); Ctrl-C stops it", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    sandbox.stop()
    return 0


def demo(args: argparse.Namespace) -> int:
    from local_aws import stack

    requested = [d for item in args.dags or [] for d in item.replace(",", " ").split()]
    try:
        return stack.run_demo(
            requested or None, timeout_s=args.timeout, sandbox_port=args.sandbox_port, api_port=args.port
        )
    except stack.StackError as err:
        print(err, file=sys.stderr, flush=True)
        return err.exit_code


def up(args: argparse.Namespace) -> int:
    from local_aws import stack

    try:
        return stack.run_up(
            sandbox_port=args.sandbox_port, api_port=args.port, api_host=args.host, schedules=args.schedules
        )
    except stack.StackError as err:
        print(err, file=sys.stderr, flush=True)
        return err.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the sandbox in the foreground")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve_parser.set_defaults(func=serve)

    demo_parser = commands.add_parser(
        "demo", help="start the sandbox and Airflow, run every DAG once with its demo data, report, stop"
    )
    demo_parser.add_argument(
        "--dags", nargs="*", metavar="DAG_ID", help="only these DAG ids (space or comma separated); default: all"
    )
    demo_parser.add_argument(
        "--timeout", type=float, default=3600, metavar="SECONDS", help="overall time limit (default 3600)"
    )
    demo_parser.add_argument(
        "--sandbox-port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}, or a free one if taken"
    )
    demo_parser.add_argument("--port", type=int, default=8080, help="api-server port (default 8080, or a free one)")
    demo_parser.set_defaults(func=demo)

    up_parser = commands.add_parser("up", help="start the sandbox and Airflow with the web UI; Ctrl-C stops them")
    up_parser.add_argument("--port", type=int, default=8080, help="web UI / api-server port (default 8080)")
    up_parser.add_argument("--host", default="127.0.0.1", help="address the web UI listens on (default 127.0.0.1)")
    up_parser.add_argument(
        "--sandbox-port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}, or a free one if taken"
    )
    up_parser.add_argument(
        "--schedules", action="store_true", help="let schedules and Asset events start runs (default: off)"
    )
    up_parser.set_defaults(func=up)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:  # before anything was started, or `serve` stopping
        return 130


if __name__ == "__main__":
    sys.exit(main())
