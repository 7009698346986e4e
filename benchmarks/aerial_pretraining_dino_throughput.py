"""DINO training throughput (images/s) and peak memory: the tiny demo config and ViT-S/16 with multi-crop.

    .venv/bin/python benchmarks/aerial_pretraining_dino_throughput.py [--runs 5] [--steps N] [--device cuda]

Times `DinoTrainer.train_step` (teacher forward on the 2 global crops, student forward on all crops,
backward, clipping, AdamW, EMA update) on ready-made crops, so the figure is the model's, not the input
pipeline's; the multi-crop augmentation (one CPU worker) is timed apart. Each config runs in its own
process so its peak RSS (resource.getrusage) is its own; with --device cuda also the peak CUDA memory.
Reports the median over --runs runs (each of a few steps) after one warm-up step, and the load average.
Without torch in this interpreter, it re-runs itself in the jobs' environment (include/aerial_pretraining).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JOB_CODE = REPO / "include" / "aerial_pretraining"

CONFIGS = {
    "demo (vit_demo/16, 2x64 + 2x32 px)": dict(
        arch="vit_demo",
        out_dim=256,
        global_size=64,
        local_size=32,
        local_crops=2,
        batch=16,
        gpu_batch=256,
        steps=10,
        gpu_steps=20,
    ),
    "ViT-S/16 (2x224 + 8x96 px)": dict(
        arch="vit_small",
        out_dim=65536,
        global_size=224,
        local_size=96,
        local_crops=8,
        batch=8,
        gpu_batch=64,
        steps=1,
        gpu_steps=10,
    ),
}


def measure(name: str, device: str, runs: int, steps: int | None) -> dict:
    """In this process: build the trainer for one config and time its steps."""
    import resource

    import torch

    sys.path.insert(0, str(JOB_CODE))
    from augment import MultiCropConfig, multi_crop
    from train import DinoTrainer, parse_args

    config = CONFIGS[name]
    steps = steps or config["gpu_steps" if device == "cuda" else "steps"]
    batch = config["gpu_batch"] if device == "cuda" else config["batch"]
    args = parse_args(
        [
            "--arch",
            config["arch"],
            "--patch_size",
            "16",
            "--out_dim",
            str(config["out_dim"]),
            "--epochs",
            "1",
            "--batch_size",
            str(batch),
            "--global_crop_size",
            str(config["global_size"]),
            "--local_crop_size",
            str(config["local_size"]),
            "--local_crops_number",
            str(config["local_crops"]),
            "--warmup_epochs",
            "0",
        ]
    )
    trainer = DinoTrainer(args, steps_per_epoch=(runs * steps + 1), device=device)
    gen = torch.Generator().manual_seed(0)
    crops = [
        torch.randn(batch, 3, config["global_size"], config["global_size"], generator=gen) for _ in range(2)
    ]
    crops += [
        torch.randn(batch, 3, config["local_size"], config["local_size"], generator=gen)
        for _ in range(config["local_crops"])
    ]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    trainer.train_step(crops, 0, 0)  # warm-up: allocator, kernels, lazy init
    sync()
    rates, step = [], 1
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(crops, 0, step)
            step += 1
        sync()
        rates.append(batch * steps / (time.perf_counter() - start))
    image = torch.rand(3, 120, 120)
    crop_config = MultiCropConfig(config["global_size"], config["local_size"], config["local_crops"])
    start = time.perf_counter()
    for index in range(20):
        multi_crop(image, crop_config, torch.Generator().manual_seed(index))
    return {
        "config": name,
        "device": device,
        "batch": batch,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "images_per_s_median": statistics.median(rates),
        "images_per_s_runs": rates,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        "augment_images_per_s_one_worker": 20 / (time.perf_counter() - start),
        "parameters_m": sum(p.numel() for p in trainer.student.parameters()) / 1e6,
    }


def job_python() -> str:
    try:
        import torch  # noqa: F401

        return sys.executable
    except ImportError:
        sys.path.insert(0, str(REPO))
        from local_aws.environments import ensure_env

        return str(
            ensure_env((JOB_CODE / "requirements.txt").read_text(), label="pytorch-training") / "python"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="steps per run (default: 10 demo / 1 ViT-S on CPU, 20 / 10 on GPU)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--config", help=argparse.SUPPRESS)  # internal: measure one config in this process
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines")
    args = parser.parse_args()
    if args.config:
        print(json.dumps(measure(args.config, args.device, args.runs, args.steps or None)))
        return
    python = job_python()
    load_before = os.getloadavg()
    results = []
    for name in CONFIGS:
        done = subprocess.run(
            [
                python,
                __file__,
                "--config",
                name,
                "--device",
                args.device,
                "--runs",
                str(args.runs),
                "--steps",
                str(args.steps),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    if args.json:
        for result in results:
            print(json.dumps(result))
        return
    print(
        f"DINO train step on {args.device}, {os.cpu_count()} CPUs; median of {args.runs} runs (steps per run in the table); "
        f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        f"{'config':38} {'batch':>5} {'steps':>5} {'thr':>3} {'images/s':>9} {'runs (images/s)':>30} {'peak RSS MiB':>12} {'CUDA MiB':>9} {'aug img/s':>9} {'params M':>8}"
    )
    for r in results:
        runs = ", ".join(f"{x:.1f}" for x in r["images_per_s_runs"])
        cuda = f"{r['peak_cuda_mib']:.0f}" if r["peak_cuda_mib"] is not None else "-"
        print(
            f"{r['config']:38} {r['batch']:>5} {r['steps']:>5} {r['threads']:>3} {r['images_per_s_median']:>9.2f} {runs:>30} "
            f"{r['peak_rss_mib']:>12.0f} {cuda:>9} {r['augment_images_per_s_one_worker']:>9.1f} {r['parameters_m']:>8.1f}"
        )


if __name__ == "__main__":
    main()
