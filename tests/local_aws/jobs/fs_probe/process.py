"""A processing script that reads and writes SageMaker Processing's paths itself (no arguments)."""

import json
import os
from pathlib import Path

job = json.loads(Path("/opt/ml/config/processingjobconfig.json").read_text())
hosts = json.loads(Path("/opt/ml/config/resourceconfig.json").read_text())["hosts"]
source = Path("/opt/ml/processing/input/data")
counts = {p.name: len(p.read_text().splitlines()) for p in sorted(source.glob("*.txt"))}
Path("/opt/ml/processing/output/result.json").write_text(json.dumps(
    {"counts": counts, "cwd": os.getcwd(), "job": job["ProcessingJobName"], "hosts": hosts}))
print(f"counted {len(counts)} files in {os.getcwd()}")
