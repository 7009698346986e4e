"""A Batch job that fails with exit status 3 after saying why."""

import sys

print("checking input: the project zip has no config.yaml", file=sys.stderr)
sys.exit(3)
