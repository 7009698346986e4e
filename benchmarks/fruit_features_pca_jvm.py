"""fruit_features: seconds of the driver's PCA fit under driver JVM options, interleaved A/B (issue 17.4).

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/fruit_features_pca_jvm.py [--runs 3]
        [--variant "serial+c1=-XX:+UseSerialGC -XX:TieredStopAtLevel=1" --variant "serial=-XX:+UseSerialGC"]

The Spark job fits `pyspark.ml.feature.PCA` with k = min(1280, images) on 1280-d features: the covariance
and its SVD run in the driver's JVM (pure-Java LAPACK), so JVM options that save CPU in the feature stage
(C1 only, serial GC) may cost it here. Each run fits PCA(k=300) on 300 random 1280-d vectors (the job's
shape for 300 photos) once per variant, in local[2] with pyspark 3.5 (the job's EMR 7 environment), the
variants' order rotating per run; prints each variant's median seconds and its median per-run ratio to the
JVM's defaults.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from tests.include.fruit_features.spark_envs import EMR7_PYSPARK, spark_bin  # noqa: E402

FIT = """
import time
import numpy as np
from pyspark.ml.feature import PCA
from pyspark.ml.linalg import Vectors
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("pca_jvm").getOrCreate()
rng = np.random.default_rng(0)
frame = spark.createDataFrame([(Vectors.dense(rng.standard_normal(1280)),) for _ in range(300)], ["vector"])
frame.cache().count()
started = time.perf_counter()
PCA(k=300, inputCol="vector", outputCol="pca").fit(frame)
print(f"PCA_FIT_S {time.perf_counter() - started}")
spark.stop()
"""


def fit_seconds(bin_dir: Path, app: Path, java_options: str) -> float:
    conf = ["--conf", f"spark.driver.extraJavaOptions={java_options}"] if java_options else []
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SPARK_LOCAL_IP": "127.0.0.1"}
    env["PYSPARK_PYTHON"] = str(bin_dir / "python")
    done = subprocess.run(
        [str(bin_dir / "spark-submit"), "--master", "local[2]", *conf, str(app)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("PCA_FIT_S ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"spark-submit ({java_options or 'defaults'}) failed:\n{done.stderr[-3000:]}")
    return float(lines[-1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--variant",
        action="append",
        metavar="NAME=JAVA_OPTIONS",
        help="driver JVM options to compare with the defaults (repeatable)",
    )
    args = parser.parse_args()
    variants = {"defaults": ""}
    for item in args.variant or ["serial+c1=-XX:+UseSerialGC -XX:TieredStopAtLevel=1"]:
        name, _, options = item.partition("=")
        variants[name] = options
    bin_dir = spark_bin(EMR7_PYSPARK)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="pca-jvm-") as scratch:
        app = Path(scratch, "fit.py")
        app.write_text(FIT)
        names = list(variants)
        for run in range(args.runs):
            for name in names[run % len(names) :] + names[: run % len(names)]:
                seconds[name].append(fit_seconds(bin_dir, app, variants[name]))
            print(
                f"  run {run + 1}: "
                + ", ".join(f"{name} {seconds[name][-1]:.1f} s" for name in names)
                + f" (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    med = statistics.median
    print(f"\nPCA(k=300) fit on 300 x 1280, local[2], median of {args.runs} runs, {os.cpu_count()} CPUs\n")
    print("| driver JVM options | fit s | x defaults (per run) |\n|---|---|---|")
    for name, options in variants.items():
        ratio = med(s / d for s, d in zip(seconds[name], seconds["defaults"], strict=True))
        print(f"| {name}: `{options or 'none'}` | {med(seconds[name]):.1f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
