"""`python -m local_aws serve|demo|up|stop|logs|prereqs` — see README."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from local_aws import DEFAULT_PORT


def serve(args: argparse.Namespace) -> int:
    from local_aws.server import Sandbox
    from local_aws.stack.ports import port_is_free

    if args.port and not port_is_free(args.port, args.host):
        # moto's server thread would die on the bind and leave start() waiting; say why instead
        print(
            f"port {args.port} is in use: the sandbox cannot listen on {args.host}:{args.port}; stop what "
            "runs "
            "there or choose another port (make sandbox SANDBOX_PORT=4567)",
            file=sys.stderr,
            flush=True,
        )
        return 1
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
            requested or None,
            timeout_s=args.timeout,
            sandbox_port=args.sandbox_port,
            api_port=args.port,
            attach_sandbox=args.attach_sandbox or None,
            celery_workers=args.workers if args.executor == "celery" else 0,
        )
    except stack.StackError as err:
        print(err, file=sys.stderr, flush=True)
        return err.exit_code


def up(args: argparse.Namespace) -> int:
    from local_aws import stack

    try:
        if args.detach:
            raw = list(sys.argv[1:] if args.argv is None else args.argv)
            return stack.start_detached([a for a in raw[raw.index("up") + 1 :] if a != "--detach"])
        return stack.run_up(
            sandbox_port=args.sandbox_port,
            api_port=args.port,
            api_host=args.host,
            schedules=args.schedules,
            attach_sandbox=args.attach_sandbox or None,
            detached=args.background_child,
        )
    except stack.StackError as err:
        print(err, file=sys.stderr, flush=True)
        return err.exit_code


def stop(args: argparse.Namespace) -> int:
    from local_aws import stack

    return stack.stop_detached()


def logs(args: argparse.Namespace) -> int:
    from local_aws import stack

    try:
        return stack.follow_logs(args.lines)
    except stack.StackError as err:
        print(err, file=sys.stderr, flush=True)
        return err.exit_code


def prereqs(args: argparse.Namespace) -> int:
    from local_aws.stack import prereqs as checks

    return checks.main()


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
        "--dags",
        nargs="*",
        metavar="DAG_ID",
        help="only these DAG ids (space or comma separated); default: all",
    )
    demo_parser.add_argument(
        "--timeout", type=float, default=3600, metavar="SECONDS", help="overall time limit (default 3600)"
    )
    demo_parser.add_argument(
        "--sandbox-port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free one"
    )
    demo_parser.add_argument(
        "--port", type=int, default=8080, help="api-server port (default 8080; 0: any free one)"
    )
    demo_parser.add_argument(
        "--attach-sandbox",
        action="store_true",
        help="use the sandbox already running on --sandbox-port (also SANDBOX_ATTACH=1)",
    )
    demo_parser.add_argument(
        "--executor",
        choices=("local", "celery"),
        default="local",
        help="LocalExecutor (default), or CeleryExecutor with a Redis broker and --workers workers",
    )
    demo_parser.add_argument("--workers", type=int, default=2, help="Celery workers (--executor celery)")
    demo_parser.set_defaults(func=demo)

    up_parser = commands.add_parser(
        "up",
        help="start the sandbox and Airflow with the web UI; Ctrl-C stops them (--detach: in the background)",
    )
    up_parser.add_argument("--port", type=int, default=8080, help="web UI / api-server port (default 8080)")
    up_parser.add_argument(
        "--host", default="127.0.0.1", help="address the web UI listens on (default 127.0.0.1)"
    )
    up_parser.add_argument(
        "--sandbox-port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}; 0: any free one"
    )
    up_parser.add_argument(
        "--schedules",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let schedules and Asset events start runs (default: on exactly when a DAG's demo run starts "
        "from its upload, as in make demo)",
    )
    up_parser.add_argument(
        "--attach-sandbox",
        action="store_true",
        help="use the sandbox already running on --sandbox-port (also SANDBOX_ATTACH=1)",
    )
    up_parser.add_argument(
        "--detach", action="store_true", help="run in the background (make up); make stop ends it"
    )
    up_parser.add_argument("--background-child", action="store_true", help=argparse.SUPPRESS)
    up_parser.set_defaults(func=up, argv=argv)

    commands.add_parser("stop", help="stop the stack `up --detach` started").set_defaults(func=stop)
    logs_parser = commands.add_parser("logs", help="follow the background stack's logs (Ctrl-C ends)")
    logs_parser.add_argument("--lines", type=int, default=40)
    logs_parser.set_defaults(func=logs)
    commands.add_parser(
        "prereqs", help="check Python 3.11, Java 17, unshare and disk space; name what to install"
    ).set_defaults(func=prereqs)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:  # before anything was started, or `serve` stopping
        return 130


if __name__ == "__main__":
    sys.exit(main())
