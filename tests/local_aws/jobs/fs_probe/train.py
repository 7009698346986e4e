"""Script-mode training that uses SageMaker's fixed paths, not the SM_* variables.

With --marker it also checks that a concurrent job's files are out of sight: it writes its marker to
/opt/ml/model and /tmp, waits, and fails if anything else is there (or in --jobs-root, the host's
folder of job workspaces).
"""

import argparse
import json
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--marker", default="")
parser.add_argument("--jobs-root", default="")
parser.add_argument("--wait", type=float, default=0)
args = parser.parse_args()

assert os.environ["SM_MODEL_DIR"] == "/opt/ml/model", os.environ["SM_MODEL_DIR"]
assert os.environ["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train", os.environ["SM_CHANNEL_TRAIN"]
assert Path.cwd() == Path("/opt/ml/code"), Path.cwd()
hyperparameters = json.loads(Path("/opt/ml/input/config/hyperparameters.json").read_text())
rows = len(Path("/opt/ml/input/data/train/data.csv").read_text().splitlines())
Path("/opt/ml/model/x").write_text(json.dumps({"rows": rows, "hyperparameters": sorted(hyperparameters)}))
if args.marker:
    Path(f"/opt/ml/model/{args.marker}").write_text(args.marker)
    Path(f"/tmp/{args.marker}").write_text(args.marker)
    time.sleep(args.wait)
    seen = sorted(p.name for p in Path("/opt/ml/model").iterdir())
    seen += sorted(p.name for p in Path("/tmp").iterdir())
    hidden = Path(args.jobs_root)
    others = sorted(p.name for p in hidden.iterdir()) if args.jobs_root and hidden.is_dir() else []
    print(f"sees {seen}, jobs root {others}")
    if seen != sorted(["x", args.marker]) + [args.marker] or others:
        raise SystemExit(f"saw files that are not mine: {seen} {others}")
print("wrote /opt/ml/model/x")
