"""A bring-your-own processing image for the SDK's Processor.run(): counts the lines of its input files."""

import json
import sys
from pathlib import Path

source, target = Path(sys.argv[1]), Path(sys.argv[2])
counts = {p.name: len(p.read_text().splitlines()) for p in sorted(source.rglob("*.txt"))}
target.mkdir(parents=True, exist_ok=True)
(target / "counts.json").write_text(json.dumps(counts))
print(f"counted {len(counts)} files", flush=True)
