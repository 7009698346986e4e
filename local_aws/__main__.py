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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the sandbox in the foreground")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    serve_parser.set_defaults(func=serve)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
