"""A processing script (framework-image script mode): counts lines of every input file."""

import json
import sys
from pathlib import Path

source, target = Path(sys.argv[1]), Path(sys.argv[2])
counts = {p.name: len(p.read_text().splitlines()) for p in sorted(source.glob("*.txt"))}
target.mkdir(parents=True, exist_ok=True)
(target / "counts.json").write_text(json.dumps(counts))
print(f"counted {len(counts)} files")
