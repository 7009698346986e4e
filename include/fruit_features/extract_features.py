"""The EMR Spark step: fruit photos -> CNN features (ONNX) -> PCA -> parquet + metrics.json.

    spark-submit --py-files image_model.py --files model.onnx extract_features.py \
        --images s3://bucket/fruits/ --output s3://bucket/features/run-1/ (--pca-k 50 | --pca-variance 0.9)

* reads every image under --images (binaryFile, recursive, image extensions only); the label is the
  image's folder name;
* decodes, resizes and extracts features with `predict_batch_udf` and one ONNX Runtime session per
  Python worker (one intra-op thread: Spark already runs one worker per core);
* skips unreadable images, and lists them with their paths and the decoder's error;
* fits `pyspark.ml.feature.PCA` with k components, or the smallest k whose cumulative explained variance
  reaches --pca-variance;
* writes <output>/features/ (parquet: path, label, features, pca) and <output>/metrics.json.

`path` is the image's key relative to --images (e.g. `apple/0001.jpg`). Runs unchanged on pyspark 3.5
(EMR 7.x) and 4.x.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

EMPTY_FILE = "empty file (0 bytes)"
# orchard's convention for an input error in job code (plugins/orchard/errors.py; job code cannot import it):
# exit code 65 (sysexits EX_DATAERR) and a last error line starting "InputError: ", which EMR shows in the
# step's FailureDetails: the DAG's extract task then fails without retry instead of re-running the step.
INPUT_ERROR_EXIT_CODE = 65
INPUT_ERROR_PREFIX = "InputError: "


class InputError(ValueError):
    """The images or the PCA request cannot work: a person must fix them; retrying changes nothing."""


SCATTER_SAMPLE = 2000  # points of the first two components kept in metrics.json for the report's plot


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fruit photos -> CNN features -> PCA -> parquet")
    parser.add_argument("--images", required=True, help="folder (s3:// on EMR) with one sub-folder per fruit")
    parser.add_argument("--output", required=True, help="folder for features/ (parquet) and metrics.json")
    parser.add_argument("--model", default="model.onnx", help="ONNX file name shipped with --files")
    pca = parser.add_mutually_exclusive_group(required=True)
    pca.add_argument("--pca-k", type=int, help="number of principal components")
    pca.add_argument("--pca-variance", type=float, help="smallest k whose explained variance reaches this")
    parser.add_argument("--batch-size", type=int, default=32, help="images per ONNX Runtime call")
    parser.add_argument("--arrow-batch", type=int, default=256, help="rows per Arrow batch sent to Python")
    args = parser.parse_args(argv)
    if args.pca_k is not None and args.pca_k < 1:
        parser.error(f"--pca-k must be >= 1, got {args.pca_k}")
    if args.pca_variance is not None and not 0 < args.pca_variance <= 1:
        parser.error(f"--pca-variance must be in (0, 1], got {args.pca_variance}")
    return args


def model_path(name: str) -> str:
    """The model as a local file: shipped with --files (SparkFiles), or a path given directly."""
    from pyspark import SparkFiles

    if os.path.isfile(name):
        return name
    return SparkFiles.get(os.path.basename(name))


def features_udf(model: str, batch_size: int):
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.types import ArrayType, FloatType, StringType, StructField, StructType

    def make_predict_fn():
        # Runs once per Python worker (predict_batch_udf caches it): one session per worker, not per batch.
        import image_model

        return image_model.make_features_fn(image_model.open_session(model_path(model), intra_op_threads=1))

    schema = StructType([StructField("features", ArrayType(FloatType())), StructField("error", StringType())])
    return predict_batch_udf(make_predict_fn, return_type=schema, batch_size=batch_size)


def read_images(spark, images: str, root: str):
    """(path relative to root, label, content) of every image file, and the image files Spark listed."""
    from image_model import spark_glob
    from pyspark.sql import functions as F

    frame = (  # the extension rule of image_model.is_image_file (any case); Spark itself hides _x and .x
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", spark_glob())
        .load(images)
    )
    relative = F.when(F.col("path").startswith(root), F.expr(f"substring(path, {len(root) + 1})"))
    selected = frame.select(
        relative.otherwise(F.col("path")).alias("path"),
        F.element_at(F.split("path", "/"), -2).alias("label"),
        "content",
    )
    # inputFiles() gives URIs (file:///x); the path column has Hadoop's Path form (file:/x): make them alike.
    hadoop_path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    return selected, [hadoop_path(uri).toString() for uri in frame.inputFiles()]


def empty_files(extracted, listed: list[str], root: str) -> list[dict[str, str]]:
    """Image files Spark listed but never read: binaryFile skips 0-byte files, which are corrupt images."""
    if len(listed) <= extracted.count():
        return []
    seen = {row.path for row in extracted.select("path").collect()}
    relative = (path.removeprefix(root) for path in listed)
    return [{"path": path, "error": EMPTY_FILE} for path in relative if path not in seen]


def qualified_root(spark, folder: str) -> str:
    """`folder` as Spark writes it in the path column (file:/..., s3://...), ending with '/'."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(folder)
    qualified = (
        path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).makeQualified(path).toString()
    )
    return qualified.rstrip("/") + "/"


def fit_pca(vectors, dim: int, rows: int, k: int | None, variance: float | None):
    """The fitted PCA model, the k to keep, and the cumulative explained variance of the fitted components."""
    from pyspark.ml.feature import PCA

    limit = min(dim, rows)
    if k is not None and k > limit:
        raise InputError(
            f"--pca-k {k} is larger than min(feature dimension {dim}, readable images {rows}) = {limit}: "
            "ask for fewer components (pca_k) or give more images"
        )
    # With a variance target every component is fitted once; the first k of them are the k-component PCA
    # (components come sorted by variance), so no second fit (each costs a dense SVD of dim x dim).
    model = PCA(k=k if k is not None else limit, inputCol="vector", outputCol="pca").fit(vectors)
    curve = _cumulative(model.explainedVariance.toArray())
    if k is None:
        k = next((i + 1 for i, total in enumerate(curve) if total >= variance - 1e-9), limit)
    return model, k, curve


def _cumulative(values) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += float(value)
        out.append(round(total, 6))
    return out


def write_text(spark, uri: str, text: str) -> None:
    """One small file through Hadoop's FileSystem: EMRFS on s3:// URIs, the local disk elsewhere."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    stream = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).create(path, True)
    try:
        stream.write(bytearray(text.encode()))
    finally:
        stream.close()


def extract(spark, args: argparse.Namespace, timings: dict[str, float]):
    """Features of every image (cached), the corrupt images with their paths, and the image files found."""
    import image_model
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    root = qualified_root(spark, args.images)
    images, listed = read_images(spark, args.images, root)
    if not listed:
        raise InputError(
            f"no images ({', '.join(image_model.IMAGE_EXTENSIONS)}) under {args.images}: upload the photos "
            "in one folder per fruit (<prefix>/<fruit>/<photo>.jpg) or fix images_prefix"
        )
    out = features_udf(args.model, args.batch_size)("content").alias("out")
    extracted = (
        images.select("path", "label", out)
        .select("path", "label", "out.features", "out.error")
        .persist(StorageLevel.MEMORY_AND_DISK)
    )  # read by the corrupt listing, PCA fit and write
    mark = time.perf_counter()
    decoded = extracted.count()
    timings["features_s"] = time.perf_counter() - mark
    unreadable = [
        row.asDict() for row in extracted.where(F.col("error").isNotNull()).select("path", "error").collect()
    ]
    corrupt = unreadable + empty_files(extracted, listed, root)
    return extracted, corrupt, decoded


def reduce_and_write(
    spark, args: argparse.Namespace, readable, dim: int, rows: int, timings: dict[str, float]
):
    """Fit the PCA, write path/label/features/pca as parquet; returns (k, curve, scatter sample)."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    mark = time.perf_counter()
    model, k, curve = fit_pca(readable, dim, rows, args.pca_k, args.pca_variance)
    timings["pca_fit_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    features_uri = f"{args.output.rstrip('/')}/features"
    pca = F.slice(vector_to_array("pca"), 1, k).alias("pca")
    model.transform(readable).select("path", "label", "features", pca).write.mode("overwrite").parquet(
        features_uri
    )
    timings["write_s"] = time.perf_counter() - mark
    sample = spark.read.parquet(features_uri).select("label", "pca").limit(SCATTER_SAMPLE).collect()
    scatter = [[row.label, float(row.pca[0]), float(row.pca[1]) if k > 1 else 0.0] for row in sample]
    return k, curve, scatter


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    started = time.perf_counter()
    spark = (
        SparkSession.builder.appName("fruit_features")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.arrow_batch))
        .getOrCreate()
    )
    timings = {"spark_startup_s": time.perf_counter() - started}

    import image_model

    info = image_model.model_info(image_model.open_session(model_path(args.model)))
    extracted, corrupt, decoded = extract(spark, args, timings)
    readable = extracted.where(F.col("error").isNull()).select(
        "path", "label", "features", array_to_vector("features").alias("vector")
    )
    rows = decoded - sum(1 for item in corrupt if item["error"] != EMPTY_FILE)
    if rows < 2:
        raise InputError(
            f"PCA needs at least 2 readable images; {rows} of {decoded + len(corrupt)} under {args.images} "
            "are readable (the others are listed as corrupt above): replace the unreadable photos"
        )
    k, curve, scatter = reduce_and_write(spark, args, readable, info["feature_dim"], rows, timings)
    timings["total_s"] = time.perf_counter() - started

    labels = {row.label: row["count"] for row in readable.groupBy("label").count().collect()}
    metrics = {
        "model": info.get("model"),
        "weights": info.get("weights"),
        "feature_dim": info["feature_dim"],
        "images_found": rows + len(corrupt),
        "images_readable": rows,
        "corrupt_count": len(corrupt),
        "corrupt": sorted(corrupt, key=lambda item: item["path"]),
        "labels": dict(sorted(labels.items())),
        "pca_k": k,
        "pca_variance_target": args.pca_variance,
        "explained_variance": curve[k - 1],
        "explained_variance_curve": curve,
        "scatter": scatter,
        "images_per_second": round(decoded / timings["features_s"], 3),
        "timings": {key: round(value, 3) for key, value in timings.items()},
        "spark_version": spark.version,
        "default_parallelism": spark.sparkContext.defaultParallelism,
        "batch_size": args.batch_size,
        "arrow_batch": args.arrow_batch,
    }
    write_text(spark, f"{args.output.rstrip('/')}/metrics.json", json.dumps(metrics, indent=1))
    extracted.unpersist()
    spark.stop()
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        metrics = run(args)
    except InputError as error:
        print(f"{INPUT_ERROR_PREFIX}{error}", file=sys.stderr, flush=True)
        return INPUT_ERROR_EXIT_CODE
    print(
        f"fruit_features: {metrics['images_readable']} images -> {metrics['feature_dim']}-d {metrics['model']} "
        f"features -> PCA k={metrics['pca_k']} (explained variance {metrics['explained_variance']:.3f}); "
        f"{metrics['corrupt_count']} unreadable; {metrics['images_per_second']} images/s"
    )
    for item in metrics["corrupt"]:
        print(f"fruit_features: skipped unreadable image {item['path']}: {item['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
