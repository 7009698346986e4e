"""A tiny script-mode entry point: reads its channel, prints a metric, writes a model file."""

import argparse
import json
import os
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
lines = sum(len(p.read_text().splitlines()) for p in Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.txt"))
for epoch in range(args.epochs):
    print(f"epoch={epoch} loss={1.0 / (epoch + 1):.3f}", flush=True)
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"lines": lines, "epochs": args.epochs}))
print("training done", flush=True)
