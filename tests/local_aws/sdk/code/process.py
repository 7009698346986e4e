"""A tiny processing script for FrameworkProcessor: counts the lines of its input files."""

import json
from pathlib import Path

source, target = Path("/opt/ml/processing/input/data"), Path("/opt/ml/processing/output")
counts = {p.name: len(p.read_text().splitlines()) for p in sorted(source.glob("*.txt"))}
target.mkdir(parents=True, exist_ok=True)
(target / "counts.json").write_text(json.dumps(counts))
print(f"counted {len(counts)} files", flush=True)
