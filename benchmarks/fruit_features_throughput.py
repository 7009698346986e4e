"""fruit_features: images/s of the Spark job in local[2] vs the same ONNX model in one plain Python process.

    make bench BENCH=fruit_features_throughput          # or: PYTHONPATH=plugins:. .venv/bin/python <this file>
    ... --images 300 --runs 3 --spark 3.5 4.0 --batch-size 32 --arrow-batch 256
    ... --spark 3.5 --runs 5 --no-job --ab --conf spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1  # A/B

On the same generated photos (JPEG/PNG, 256 px) and the same EfficientNet-Lite0 ONNX model, in one run:

* plain: one Python process decodes + resizes + runs ONNX Runtime (its default threads: all cores) over
  every photo in batches; images/s after one warm-up batch;
* spark steady state: the job's own read + `predict_batch_udf` pipeline in local[2] (one ONNX Runtime
  session per Python worker, one thread each), forced with a `noop` write; the first pass warms the
  workers and sessions, the next passes are timed;
* the full job (`spark-submit extract_features.py`): Spark start-up, feature stage, PCA fit, write, total;

for pyspark 3.5 (EMR 7.x's Spark, the job's requirements.txt) and 4.x. Every spark-submit starts from EMR's
own spark-defaults (local_aws.emr.EMR_SPARK_DEFAULTS: its JVM options, as the sandbox's EMR steps do).

What the ratio measures: the STEADY STATE (warm JVM, workers and sessions), per image, at the run's image
count; each pass still pays its per-job costs (planning, 10 tasks, Arrow round trips). The fixed costs are
reported apart, never in the ratio: `spark_startup_s_steady` (SparkSession start) and `first_pass_extra_s`
(the first pass over a warm one: Python workers forked, ONNX sessions created, cold JIT), and the full
job's start-up, PCA fit and write. Where a pass's time goes, load-independently: CPU seconds per pass of
the JVM (of which its JIT compiler threads) and of the Python workers (`/proc` utime + stime), beside the plain process's CPU for the same
images (`plain_cpu_s`; its ONNX thread pool spins, so it grows with the machine's load). Each figure is the median of
--runs runs; each run's ratio divides the Spark rate by the mean of plain rates measured just before and
just after it (the machine may be shared). Prints a markdown table and a JSON line. Needs Java 17, and
builds the job environments on first use.

`--conf KEY=VALUE` (repeatable) passes Spark properties to every spark-submit, as the cluster's
`spark-defaults` classification does on EMR (and in the sandbox). With `--ab`, each run measures the steady
state (and the full job) both without them (A) and with them (B), interleaved with the plain rate (plain,
A, plain, B, plain; the order of A and B alternates per run), and reports each side's figures and the
per-run B/A ratio. `--no-job` skips the full job (start-up, PCA, write) to spend the time on the steady state; `--job-only`
times only the full job (e.g. `--ab --job-only`: what a JVM setting does to start-up and the driver's PCA).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

from local_aws.demo_data.fruit_features import generate
from local_aws.emr import EMR_SPARK_DEFAULTS
from tests.include.conftest import job_env_python
from tests.include.fruit_features.spark_envs import EMR7_PYSPARK, JOB_DIR, PYSPARK_4, spark_bin

SPARK_VERSIONS = {"3.5": EMR7_PYSPARK, "4.0": PYSPARK_4}

PLAIN = """
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import image_model
model, folder, batch = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
paths = sorted(p for p in folder.rglob("*") if p.suffix.lower().lstrip(".") in image_model.IMAGE_EXTENSIONS)
features = image_model.make_features_fn(image_model.open_session(model, intra_op_threads=0))
features([p.read_bytes() for p in paths[:batch]])  # warm-up
start, cpu = time.perf_counter(), sum(os.times()[:2])
for i in range(0, len(paths), batch):
    features([p.read_bytes() for p in paths[i:i + batch]])
print(json.dumps({"images": len(paths), "images_per_s": len(paths) / (time.perf_counter() - start),
                  "cpu_s": sum(os.times()[:2]) - cpu}))
"""

STEADY = """
import json, os, sys, time
from pathlib import Path

def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

def jit_cpu(jvm):
    # The JVM's JIT compiler threads ("C2 CompilerThre", "C1 CompilerThre"); threads that ended are missed.
    total = 0.0
    for task in Path(f"/proc/{jvm}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if "CompilerThre" in stat.split("(", 1)[1].rsplit(")", 1)[0]:
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total

def python_workers_cpu(jvm):
    # CPU of every process under the JVM (pyspark.daemon and its forked workers) except this driver.
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0.0, list(children.get(jvm, []))
    while stack:
        pid = stack.pop()
        if pid != os.getpid():
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
            stack += children.get(pid, [])
    return total

start = time.perf_counter()
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("fruit_features_bench")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", sys.argv[4]).getOrCreate())
startup = time.perf_counter() - start
import extract_features as job
images, batch, passes = sys.argv[1], int(sys.argv[3]), int(sys.argv[5])
frame, listed = job.read_images(spark, images, job.qualified_root(spark, images))
out = frame.select("path", job.features_udf(sys.argv[2], batch)("content").alias("out"))
seconds, jvm_cpu, jit, workers_cpu, jvm = [], [], [], [], os.getppid()  # spark-submit's JVM ran this driver
for _ in range(passes):
    mark, jvm_mark, workers_mark = time.perf_counter(), cpu_seconds(jvm), python_workers_cpu(jvm)
    jit_mark = jit_cpu(jvm)
    out.write.format("noop").mode("overwrite").save()  # computes every row's features, writes nothing
    seconds.append(time.perf_counter() - mark)
    jvm_cpu.append(cpu_seconds(jvm) - jvm_mark)
    jit.append(jit_cpu(jvm) - jit_mark)
    workers_cpu.append(python_workers_cpu(jvm) - workers_mark)
print("BENCH " + json.dumps({"images": len(listed), "startup_s": startup, "pass_s": seconds,
                             "jvm_cpu_s": jvm_cpu, "jit_cpu_s": jit, "workers_cpu_s": workers_cpu,
                             "partitions": frame.rdd.getNumPartitions(), "spark": spark.version}))
spark.stop()
"""


def spark_env(bin_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYSPARK_PYTHON": str(bin_dir / "python"),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def run(argv: list[str], **kwargs) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:3])} ... failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def export_model(folder: Path) -> Path:
    run(
        [
            str(job_env_python("fruit_features_export")),
            "export.py",
            "--model",
            "efficientnet_lite0",
            "--output",
            str(folder),
            "--check-images",
            "1",
        ],
        cwd=REPO / "include" / "fruit_features_export",
    )
    return folder / "model.onnx"


def plain_rate(model: Path, images: Path, batch: int, cpu: list[float] | None = None) -> float:
    """Images/s of the plain process; appends its CPU seconds over the timed images to `cpu`."""
    out = run(
        [
            str(job_env_python("fruit_features")),
            "-c",
            PLAIN,
            str(JOB_DIR),
            str(model),
            str(images),
            str(batch),
        ]
    )
    result = json.loads(out.strip().splitlines()[-1])
    if cpu is not None:
        cpu.append(result["cpu_s"])
    return result["images_per_s"]


def spark_submit(bin_dir: Path, model: Path, app: Path, *args: str, conf: tuple[str, ...] = ()) -> str:
    # As the sandbox's EMR runs a step: EMR's own spark-defaults first (its JVM options), then --conf.
    emr_defaults = tuple(f"{key}={value}" for key, value in EMR_SPARK_DEFAULTS.items())
    argv = [
        str(bin_dir / "spark-submit"),
        "--master",
        "local[2]",
        *(item for pair in emr_defaults + conf for item in ("--conf", pair)),
        "--py-files",
        f"{JOB_DIR / 'image_model.py'},{JOB_DIR / 'extract_features.py'}",
        "--files",
        str(model),
        str(app),
        *args,
    ]
    return run(argv, env=spark_env(bin_dir), cwd=JOB_DIR)


def steady_state(
    bin_dir: Path,
    model: Path,
    images: Path,
    batch: int,
    arrow: int,
    work: Path,
    conf: tuple[str, ...] = (),
    passes: int = 3,
) -> dict:
    app = work / "steady.py"
    app.write_text(STEADY)
    argv = (str(images), "model.onnx", str(batch), str(arrow), str(passes))
    out = spark_submit(bin_dir, model, app, *argv, conf=conf)
    result = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH "))[6:])
    result["images_per_s"] = result["images"] / statistics.median(result["pass_s"][1:])  # pass 1 warms up
    # Fixed costs, outside the ratio: Spark's start-up and what the first pass costs over a warm one
    # (Python workers forked, ONNX sessions created, the JVM's JIT on cold code).
    result["first_pass_extra_s"] = result["pass_s"][0] - statistics.median(result["pass_s"][1:])
    result["jvm_cpu_per_pass_s"] = statistics.median(result["jvm_cpu_s"][1:])
    result["workers_cpu_per_pass_s"] = statistics.median(result["workers_cpu_s"][1:])
    result["jit_cpu_per_pass_s"] = statistics.median(result["jit_cpu_s"][1:])  # part of the JVM's
    return result


def full_job(
    bin_dir: Path, model: Path, images: Path, batch: int, arrow: int, work: Path, conf: tuple[str, ...] = ()
) -> dict:
    output = work / "job-output"
    spark_submit(
        bin_dir,
        model,
        JOB_DIR / "extract_features.py",
        "--images",
        str(images),
        "--output",
        str(output),
        "--pca-variance",
        "0.9",
        "--batch-size",
        str(batch),
        "--arrow-batch",
        str(arrow),
        conf=conf,
    )
    return json.loads((output / "metrics.json").read_text())


def measure(version: str, model: Path, images: Path, args: argparse.Namespace, work: Path) -> dict:
    bin_dir = spark_bin(SPARK_VERSIONS[version])
    conf = tuple(args.conf)
    sides = {"A": (), "B": conf} if args.ab else {"": conf}
    plain: list[float] = []
    plain_cpu: list[float] = []
    steady: dict[str, list[dict]] = {side: [] for side in sides}
    ratios: dict[str, list[float]] = {side: [] for side in sides}
    jobs: dict[str, list[dict]] = {side: [] for side in sides}
    for run_index in range(args.runs):
        # The machine is shared: the plain rate is taken just before and just after each Spark measurement
        # and that measurement's ratio uses their mean, so a load change hits both sides of the ratio alike.
        order = list(sides) if run_index % 2 == 0 else list(reversed(sides))
        before = plain_rate(model, images, args.batch_size, plain_cpu) if not args.job_only else 0.0
        plain.append(before)
        for side in order if not args.job_only else ():
            result = steady_state(
                bin_dir, model, images, args.batch_size, args.arrow_batch, work, sides[side], args.passes
            )
            after = plain_rate(model, images, args.batch_size, plain_cpu)
            plain.append(after)
            steady[side].append(result)
            ratios[side].append(result["images_per_s"] / ((before + after) / 2))
            before = after
        for side in order if not args.no_job else ():
            jobs[side].append(
                full_job(bin_dir, model, images, args.batch_size, args.arrow_batch, work, sides[side])
            )
        figures = (
            [f"{side or 'spark'} job {jobs[side][-1]['timings']['total_s']:.1f} s" for side in sides]
            if args.job_only
            else [
                f"{side or 'spark'} {ratios[side][-1]:.3f} (JVM {steady[side][-1]['jvm_cpu_per_pass_s']:.2f} "
                f"(JIT {steady[side][-1]['jit_cpu_per_pass_s']:.2f}) + "
                f"workers {steady[side][-1]['workers_cpu_per_pass_s']:.2f} CPU s/pass)"
                for side in sides
            ]
        )
        print(
            f"  {version} run {run_index + 1}: "
            + ", ".join(figures)
            + f"; plain CPU {plain_cpu[-1] if plain_cpu else 0:.2f} s (load {os.getloadavg()[0]:.2f})",
            file=sys.stderr,
            flush=True,
        )
    med = statistics.median
    first = next(iter(jobs.values()))[0] if args.job_only else next(iter(steady.values()))[0]
    out: dict = {"pyspark": first.get("spark") or first.get("spark_version")}
    if not args.job_only:
        out.update(
            images=first["images"],
            partitions=first["partitions"],
            plain_images_per_s=round(med(plain), 2),
            plain_cpu_s=round(med(plain_cpu), 2),
        )
    for side in sides:
        tag = f"_{side}" if side else ""
        if ratios[side]:
            out[f"spark_steady_images_per_s{tag}"] = round(med(s["images_per_s"] for s in steady[side]), 2)
            out[f"ratio{tag}"] = round(med(ratios[side]), 3)
            out[f"ratio_min_max{tag}"] = [round(min(ratios[side]), 3), round(max(ratios[side]), 3)]
            # Where a pass's CPU goes (load-independent, unlike the rates): the JVM (file reads, Arrow,
            # scheduling, JIT, GC) and the Python workers (decode + ONNX + Arrow/pandas), beside plain_cpu_s.
            out[f"spark_startup_s_steady{tag}"] = round(med(s["startup_s"] for s in steady[side]), 2)
            out[f"first_pass_extra_s{tag}"] = round(med(s["first_pass_extra_s"] for s in steady[side]), 2)
            for part in ("jvm", "jit", "workers"):
                key = f"{part}_cpu_per_pass_s"
                out[f"spark_{key}{tag}"] = round(med(s[key] for s in steady[side]), 2)
        if jobs[side]:
            runs = jobs[side]
            out[f"spark_startup_s{tag}"] = round(med(j["timings"]["spark_startup_s"] for j in runs), 2)
            out[f"job_feature_stage_images_per_s{tag}"] = round(med(j["images_per_second"] for j in runs), 2)
            out[f"pca_fit_s{tag}"] = round(med(j["timings"]["pca_fit_s"] for j in runs), 2)
            out[f"write_s{tag}"] = round(med(j["timings"]["write_s"] for j in runs), 2)
            out[f"job_total_s{tag}"] = round(med(j["timings"]["total_s"] for j in runs), 2)
            out["pca_k"] = runs[0]["pca_k"]
    if args.ab:
        if ratios["A"]:
            b_over_a = [b / a for a, b in zip(ratios["A"], ratios["B"], strict=True)]
            out["steady_B_over_A"] = round(med(b_over_a), 3)
            out["steady_B_better_runs"] = f"{sum(x > 1 for x in b_over_a)}/{len(b_over_a)}"
        if jobs["A"]:
            totals = [b["timings"]["total_s"] / a["timings"]["total_s"] for a, b in zip(jobs["A"], jobs["B"])]
            out["job_total_B_over_A"] = round(med(totals), 3)
            pca = [
                b["timings"]["pca_fit_s"] / a["timings"]["pca_fit_s"] for a, b in zip(jobs["A"], jobs["B"])
            ]
            out["pca_fit_B_over_A"] = round(med(pca), 3)
    out["runs"] = args.runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images", type=int, default=300, help="readable photos generated (+3 corrupt files)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spark", nargs="+", default=list(SPARK_VERSIONS), choices=list(SPARK_VERSIONS))
    parser.add_argument(
        "--passes",
        type=int,
        default=3,
        help="noop passes per Spark session (the first warms up; the ratio is the median of the others). "
        "The issue's figure is the default: more passes amortise the JVM's JIT warm-up into the first ones",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--arrow-batch", type=int, default=256)
    parser.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark property (repeatable)"
    )
    parser.add_argument("--ab", action="store_true", help="each run: without (A) and with (B) the --conf")
    parser.add_argument("--no-job", action="store_true", help="skip the full job (start-up, PCA, write)")
    parser.add_argument(
        "--job-only", action="store_true", help="only the full job (no plain, no steady state)"
    )
    args = parser.parse_args()
    if args.ab and not args.conf:
        parser.error("--ab compares without and with --conf: give at least one --conf")
    with tempfile.TemporaryDirectory(prefix="fruit-bench-") as tmp:
        work = Path(tmp)
        model = export_model(work / "model")
        files, _ = generate(args.images, seed=11)
        for key, body in files.items():
            (work / "photos" / key).parent.mkdir(parents=True, exist_ok=True)
            (work / "photos" / key).write_bytes(body)
        results = [measure(version, model, work / "photos", args, work) for version in args.spark]
    print(
        f"fruit_features throughput: {args.images} photos 256 px, EfficientNet-Lite0 ONNX, batch {args.batch_size}, "
        f"arrow batch {args.arrow_batch}, {args.passes} passes, median of {args.runs} runs, {os.cpu_count()} CPUs, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; conf {args.conf or 'none'}\n"
    )
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for result in results:
        print("| " + " | ".join(str(result[k]) for k in keys) + " |")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
