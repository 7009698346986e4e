"""A Batch job that checks its container filesystem: WORKDIR, a read-write and a read-only mount point."""

import os
from pathlib import Path

print(f"cwd={os.getcwd()}")
assert Path.cwd() == Path("/opt/program"), Path.cwd()
assert Path("/opt/program/batch_probe.py").is_file()
text = Path("/data/in.txt").read_text()
Path("/data/out.txt").write_text(text.upper())
try:
    Path("/reference/written.txt").write_text("should not be possible")
    print("read-only mount was writable")
    raise SystemExit(4)
except OSError as error:
    print(f"read-only mount refused the write: {error.strerror}")
print(f"reference says {Path('/reference/ref.txt').read_text().strip()}")
