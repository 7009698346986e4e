"""A step that prints a line, waits, prints another: its first line must be in S3 while it still runs."""

import sys
import time

print("first line", flush=True)
time.sleep(float(sys.argv[1]))
print("second line", flush=True)
