"""fruit_features: where a Spark pass's CPU goes, per JVM thread group and in the Python workers (issue 17.4).

    PYTHONPATH=plugins:. .venv/bin/python benchmarks/fruit_features_jvm_threads.py [--passes 4]
        [--variant "c1=spark.driver.extraJavaOptions=-XX:TieredStopAtLevel=1"]
        [--variant "g1=spark.driver.defaultJavaOptions=-XX:OnOutOfMemoryError='kill -9 %p'"]

Runs the throughput benchmark's steady-state pipeline (the job's read + predict_batch_udf, `noop` passes) in
local[2] with pyspark 3.5, starting from EMR's spark-defaults as the sandbox does, once with them alone
("emr") and once per --variant (NAME=KEY=VALUE, a Spark property over them); for each pass prints the wall
seconds, the CPU seconds of each JVM thread group (thread names with digits folded: "C# CompilerThre" are
the JIT compilers, "Executor task l" the task threads) that used at least 0.02 s, and the Python workers'
CPU. CPU seconds come from /proc and do not depend on the machine's load; threads that ended are missed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fruit_features_throughput as throughput  # noqa: E402

THREADS = (
    throughput.STEADY.replace(
        "start = time.perf_counter()",
        """def thread_groups(jvm):
    import re
    groups = {}
    for task in Path(f"/proc/{jvm}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = re.sub(r"[0-9]+", "#", stat.split("(", 1)[1].rsplit(")", 1)[0])
        fields = stat.rsplit(")", 1)[1].split()
        groups[name] = groups.get(name, 0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return groups

start = time.perf_counter()""",
        1,
    )
    .replace(
        "for _ in range(passes):\n",
        "groups = []\nfor _ in range(passes):\n    groups_mark = thread_groups(jvm)\n",
        1,
    )
    .replace(
        "    jit.append(jit_cpu(jvm) - jit_mark)\n",
        "    jit.append(jit_cpu(jvm) - jit_mark)\n"
        "    now = thread_groups(jvm)\n"
        "    groups.append({k: round(v - groups_mark.get(k, 0), 2) for k, v in now.items()"
        " if v - groups_mark.get(k, 0) >= 0.02})\n",
        1,
    )
    .replace('"jit_cpu_s": jit,', '"jit_cpu_s": jit, "thread_groups": groups,', 1)
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=KEY=VALUE")
    args = parser.parse_args()
    if "thread_groups" not in THREADS or "groups_mark" not in THREADS:
        raise SystemExit("the throughput benchmark's STEADY code changed: update the patch above")
    variants = {"emr": ()} | {v.split("=", 1)[0]: (v.split("=", 1)[1],) for v in args.variant}
    bin_dir = throughput.spark_bin(throughput.SPARK_VERSIONS["3.5"])
    with tempfile.TemporaryDirectory(prefix="fruit-threads-") as tmp:
        work = Path(tmp)
        model = throughput.export_model(work / "model")
        files, _ = throughput.generate(args.images, seed=11)
        for key, body in files.items():
            (work / "photos" / key).parent.mkdir(parents=True, exist_ok=True)
            (work / "photos" / key).write_bytes(body)
        app = work / "threads.py"
        app.write_text(THREADS)
        for name, conf in variants.items():
            argv = (str(work / "photos"), "model.onnx", "32", "256", str(args.passes))
            out = throughput.spark_submit(bin_dir, model, app, *argv, conf=conf)
            result = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH "))[6:])
            print(f"## {name} {conf or ''}")
            for index, seconds in enumerate(result["pass_s"]):
                groups = sorted(result["thread_groups"][index].items(), key=lambda item: -item[1])
                print(
                    f"pass {index + 1}: wall {seconds:.1f} s, JVM {result['jvm_cpu_s'][index]:.2f} CPU s "
                    f"({', '.join(f'{k.strip()} {v}' for k, v in groups)}), "
                    f"Python workers {result['workers_cpu_s'][index]:.2f} CPU s"
                )
            print(re.sub(r"\s+", " ", f"startup {result['startup_s']:.1f} s, {result['images']} files"))


if __name__ == "__main__":
    main()
