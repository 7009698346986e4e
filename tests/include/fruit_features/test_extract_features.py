"""The Spark job on generated photos, in the EMR 7.x environment (pyspark 3.5) and, smaller, on pyspark 4.x."""

from __future__ import annotations

import itertools
import json
import subprocess

import pytest

from tests.include.fruit_features.conftest import write_photos
from tests.include.fruit_features.spark_envs import JOB_DIR, PYSPARK_4, spark_bin, spark_submit

READ_PARQUET = """
import json, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
print(json.dumps({"rows": table.num_rows, "schema": {f.name: str(f.type) for f in table.schema},
                  "features": sorted({len(v) for v in table["features"].to_pylist()}),
                  "pca": sorted({len(v) for v in table["pca"].to_pylist()}),
                  "labels": sorted(set(table["label"].to_pylist())),
                  "paths": sorted(table["path"].to_pylist())[:3]}))
"""


def run_job(bin_dir, model, images, output, *pca: str) -> dict:
    result = spark_submit(
        bin_dir, model, "--images", str(images), "--output", str(output), *pca, "--batch-size", "8"
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    metrics = json.loads((output / "metrics.json").read_text())
    table = subprocess.run(
        [str(bin_dir / "python"), "-c", READ_PARQUET, str(output / "features")],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"metrics": metrics, "table": json.loads(table.stdout), "log": result.stdout}


@pytest.fixture(scope="module")
def emr7_run(tmp_path_factory, onnx_model):
    images = tmp_path_factory.mktemp("photos")
    corrupt = write_photos(images, 50)
    output = tmp_path_factory.mktemp("out") / "run"
    return run_job(spark_bin(), onnx_model, images, output, "--pca-variance", "0.8"), corrupt


def test_rows_are_the_readable_images_with_their_folder_as_label(emr7_run):
    run, _ = emr7_run
    metrics, table = run["metrics"], run["table"]
    assert metrics["spark_version"].startswith("3.5.")
    assert metrics["images_found"] == 53 and metrics["images_readable"] == 50  # README.txt is not an image
    assert table["rows"] == 50
    assert table["labels"] == ["apple", "banana", "grape", "lime", "orange"]
    assert table["paths"][0] == "apple/apple_0000.jpg"  # relative to --images
    assert table["schema"] == {
        "path": "string",
        "label": "string",
        "features": "list<element: float>",
        "pca": "list<element: double not null>",
    }
    assert table["features"] == [1280] and metrics["model"] == "efficientnet_lite0"


def test_corrupt_images_are_skipped_counted_and_listed_with_their_paths(emr7_run):
    run, corrupt = emr7_run
    metrics = run["metrics"]
    assert metrics["corrupt_count"] == 3
    assert sorted(item["path"] for item in metrics["corrupt"]) == corrupt
    errors = {item["path"]: item["error"] for item in metrics["corrupt"]}
    assert errors["lime/empty_0003.png"] == "empty file (0 bytes)"
    assert errors["banana/not_an_image_0002.jpg"].startswith("UnidentifiedImageError")
    assert "skipped unreadable image apple/truncated_0001.jpg" in run["log"]


def test_pca_keeps_the_smallest_k_reaching_the_variance_target(emr7_run):
    run, _ = emr7_run
    metrics, table = run["metrics"], run["table"]
    curve, k = metrics["explained_variance_curve"], metrics["pca_k"]
    assert table["pca"] == [k] and 1 < k < 50
    assert curve[k - 1] >= 0.8 > curve[k - 2]
    assert metrics["explained_variance"] == curve[k - 1]
    assert all(a <= b + 1e-9 for a, b in itertools.pairwise(curve)) and curve[-1] <= 1 + 1e-6
    assert len(metrics["scatter"]) == 50 and {row[0] for row in metrics["scatter"]} == set(table["labels"])


def test_a_fixed_k_on_pyspark_4(tmp_path, onnx_model):
    """The same job file, unchanged, on pyspark 4.x: a smaller smoke run."""
    images = tmp_path / "photos"
    write_photos(images, 10, seed=3)
    run = run_job(spark_bin(PYSPARK_4), onnx_model, images, tmp_path / "out", "--pca-k", "3")
    assert run["metrics"]["spark_version"].startswith("4.")
    assert run["metrics"]["images_readable"] == 10 and run["metrics"]["corrupt_count"] == 3
    assert run["table"]["rows"] == 10 and run["table"]["pca"] == [3]


def test_a_bad_pca_request_fails_before_spark_starts(tmp_path, onnx_model):
    result = spark_submit(
        spark_bin(),
        onnx_model,
        "--images",
        str(tmp_path),
        "--output",
        str(tmp_path / "out"),
        "--pca-variance",
        "1.5",
    )
    assert result.returncode != 0
    assert "--pca-variance must be in (0, 1], got 1.5" in result.stdout + result.stderr
    assert "SparkContext" not in result.stdout + result.stderr


def test_bootstrap_installs_the_packages_pinned_in_requirements():
    """bootstrap.sh (EMR nodes) and requirements.txt (tests, sandbox) must pin the same packages."""
    pins = {
        line.strip()
        for line in (JOB_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith("pyspark")
    }
    bootstrap = (JOB_DIR / "bootstrap.sh").read_text()
    installed = {token.strip('"\\ ') for token in bootstrap.split() if "==" in token}
    assert installed == pins


def test_the_job_reads_exactly_the_files_the_input_checks_rule_accepts(tmp_path, onnx_model):
    """Issue 13.6: the DAG's check (plan.is_image_file, a verbatim copy of image_model.is_image_file) and the
    Spark job agree on every name: extension case, Spark-hidden files and folders, non-images."""
    from local_aws.demo_data.fruit_features import generate
    from orchard.fruit_features.plan import is_image_file

    files, corrupt = generate(4, seed=3, size=64)
    photos = [body for key, body in sorted(files.items()) if key.endswith(".jpg") and key not in corrupt]
    names = [
        "apple/a.jpg",
        "apple/b.JPG",
        "apple/c.Jpeg",
        "pear/d.Jpg",
        "pear/sub/e.jpeg",
        "pear/.f.jpg",
        "pear/_g.jpg",
        "_tmp/h.jpg",
        ".cache/i.jpg",
        "pear/j.jpg.txt",
        "pear/k.JPG._COPYING_",
    ]
    images = tmp_path / "photos"
    for index, name in enumerate(names):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (images / name).write_bytes(photos[index % len(photos)])
    run = run_job(spark_bin(), onnx_model, images, tmp_path / "out", "--pca-k", "1")
    accepted = sorted(name for name in names if is_image_file(name))
    assert accepted == ["apple/a.jpg", "apple/b.JPG", "apple/c.Jpeg", "pear/d.Jpg", "pear/sub/e.jpeg"]
    assert run["metrics"]["images_found"] == len(accepted) == run["table"]["rows"]
    assert run["metrics"]["corrupt_count"] == 0


def test_an_input_error_in_the_job_exits_65_with_the_input_error_line(tmp_path, onnx_model):
    """Issue 13.3/13.9: the job's input errors follow orchard.errors' convention (exit 65, a last line
    starting "InputError: " naming the images folder and the fix), so the DAG ends the task without re-running it."""
    images = tmp_path / "photos"
    (images / "apple").mkdir(parents=True)
    (images / "apple" / "notes.txt").write_text("not a photo")
    result = spark_submit(
        spark_bin(), onnx_model, "--images", str(images), "--output", str(tmp_path / "out"), "--pca-k", "2"
    )
    assert result.returncode == 65, result.stderr[-3000:]
    output = result.stdout + result.stderr  # spark-submit passes the Python driver's stderr to its stdout
    lines = [line for line in output.splitlines() if line.startswith("InputError: ")]
    assert len(lines) == 1, result.stdout[-2000:] + result.stderr[-3000:]
    [line] = lines
    assert f"no images (jpg, jpeg, png, bmp, webp) under {images}: upload the photos" in line
