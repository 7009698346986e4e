"""``python -m deploy job-code [--bucket B] [--image-tag T] [--only NAME ...]``: see ``deploy.job_code``."""

from __future__ import annotations

import argparse
import sys

from deploy import job_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    code = commands.add_parser(
        "job-code",
        help="upload the job code AWS runs from S3 (s3://<bucket>/job-code/<image_tag>/<name>/)",
    )
    code.add_argument("--bucket", help="the artifacts bucket (default: settings' artifacts_bucket)")
    code.add_argument("--image-tag", help="the release's tag (default: settings' image_tag)")
    code.add_argument("--only", nargs="+", metavar="NAME", help="deploy only these packages")
    args = parser.parse_args(argv)
    try:
        deployed = job_code.deploy(bucket=args.bucket, image_tag=args.image_tag, names=args.only)
    except job_code.DeployError as error:
        print(f"deploy: {error}", file=sys.stderr)
        return 1
    for name, manifest in deployed.items():
        print(f"deploy: {name}: {len(manifest['files'])} files → {manifest['prefix']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
