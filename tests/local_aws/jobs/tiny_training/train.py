"""A script-mode training job: reads its channel, 'trains', writes a model, a checkpoint and metrics."""

import argparse
import json
import os
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--fail", default="no")
parser.add_argument("--seconds-per-epoch", type=float, default=0.0)
args = parser.parse_args()

rows = Path(os.environ["SM_CHANNEL_TRAIN"], "data.csv").read_text().splitlines()
checkpoints = Path(os.environ["SM_CHECKPOINT_DIR"])
checkpoints.mkdir(parents=True, exist_ok=True)  # exists only with a CheckpointConfig
resumed_from = sorted(p.name for p in checkpoints.glob("*.ckpt"))
print(f"resuming from {resumed_from}" if resumed_from else "starting fresh")
for epoch in range(args.epochs):
    loss = 1.0 / (epoch + 1)
    time.sleep(args.seconds_per_epoch)
    print(f"epoch={epoch} loss={loss:.4f}", flush=True)
    (checkpoints / f"epoch-{epoch}.ckpt").write_text(str(loss))
if args.fail == "yes":
    Path(os.environ["SM_OUTPUT_DIR"], "failure").write_text("ValueError: asked to fail")
    raise SystemExit(2)
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(
    json.dumps({"rows": len(rows), "epochs": args.epochs})
)
