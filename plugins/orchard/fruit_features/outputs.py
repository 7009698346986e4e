"""What a `fruit_features` step wrote, checked: parquet rows and schema, PCA, corrupt images; scaling figures.

Parquet files are checked from their footers (two ranged GETs each), so the check stays cheap on a large
output; one part is read whole to check the vector lengths.
"""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from typing import Any

from orchard.fruit_features.plan import FEATURE_DIM, split_uri

EXPECTED_SCHEMA = {
    "path": "string",
    "label": "string",
    "features": "list<element: float>",
    "pca": "list<element: double>",
}


FOOTER_READERS = 8  # threads reading parquet footers at once (a client keeps 10 connections)


class OutputError(ValueError):
    """The step's output does not hold what the job promises."""


def read_json(s3: Any, uri: str) -> dict[str, Any]:
    bucket, key = split_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def parquet_parts(s3: Any, folder: str) -> list[tuple[str, int]]:
    bucket, prefix = split_uri(folder)
    parts = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        parts += [
            (item["Key"], item["Size"])
            for item in page.get("Contents", [])
            if item["Key"].endswith(".parquet")
        ]
    return [(f"s3://{bucket}/{key}", size) for key, size in parts]


def parquet_footer(s3: Any, uri: str, size: int):
    """The file's metadata from its footer alone (last 8 bytes: footer length + PAR1, then the footer)."""
    import pyarrow.parquet as pq

    bucket, key = split_uri(uri)
    tail = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={size - 8}-{size - 1}")["Body"].read()
    length = struct.unpack("<I", tail[:4])[0]
    footer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={size - 8 - length}-{size - 9}")[
        "Body"
    ].read()
    return pq.read_metadata(io.BytesIO(b"PAR1" + footer + tail))


def vector_lengths(s3: Any, uri: str) -> dict[str, set[int]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    bucket, key = split_uri(uri)
    table = pq.read_table(
        io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()), columns=["features", "pca"]
    )
    return {name: set(pc.list_value_length(table[name]).to_pylist()) for name in ("features", "pca")}


def check_output(s3: Any, plan: dict[str, Any], output: str) -> dict[str, Any]:
    """Rows = readable images, schema, PCA dimension and explained variance, corrupt images listed.

    metrics.json is read while the parts are listed, and the parts' footers are read at once
    (FOOTER_READERS threads, within botocore's 10 connections of `s3`)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
        metrics_read = pool.submit(read_json, s3, f"{output}metrics.json")
        parts = parquet_parts(s3, f"{output}features/")
        metrics = metrics_read.result()
        if not parts:
            raise OutputError(f"no parquet files under {output}features/: the step wrote no features")
        footers = list(pool.map(lambda part: parquet_footer(s3, *part), parts))
    rows = sum(footer.num_rows for footer in footers)
    # Spark marks some list elements "not null": nullability is not what this check is about.
    schema = {f.name: str(f.type).replace(" not null", "") for f in footers[0].schema.to_arrow_schema()}
    smallest = min((p for p, f in zip(parts, footers) if f.num_rows), key=lambda p: p[1], default=None)
    lengths = vector_lengths(s3, smallest[0]) if smallest else {"features": set(), "pca": set()}
    params, listed = plan["params"], plan["images"]["count"]
    problems = []
    if schema != EXPECTED_SCHEMA:
        problems.append(f"schema {schema} is not {EXPECTED_SCHEMA}")
    if rows != metrics["images_readable"]:
        problems.append(f"{rows} parquet rows but the job read {metrics['images_readable']} images")
    if metrics["images_found"] != listed:
        problems.append(f"the job saw {metrics['images_found']} image files, S3 lists {listed}")
    if (
        metrics["images_found"] - metrics["images_readable"] != metrics["corrupt_count"]
        or len(metrics["corrupt"]) != metrics["corrupt_count"]
    ):
        problems.append(
            f"corrupt images: {metrics['corrupt_count']} counted, {len(metrics['corrupt'])} listed, "
            f"{metrics['images_found'] - metrics['images_readable']} missing from the rows"
        )
    if lengths["features"] - {FEATURE_DIM}:
        problems.append(f"feature vectors of lengths {sorted(lengths['features'])}, expected {FEATURE_DIM}")
    if lengths["pca"] - {metrics["pca_k"]}:
        problems.append(f"PCA vectors of lengths {sorted(lengths['pca'])}, expected k={metrics['pca_k']}")
    if params["pca_k"] is not None and metrics["pca_k"] != params["pca_k"]:
        problems.append(f"PCA kept {metrics['pca_k']} components, {params['pca_k']} asked")
    target = params["pca_variance"]
    if (
        target is not None
        and metrics["explained_variance"] < target - 1e-6
        and metrics["pca_k"] < len(metrics["explained_variance_curve"])
    ):
        problems.append(f"explained variance {metrics['explained_variance']} is below the target {target}")
    if problems:
        raise OutputError(f"output {output} failed its checks:\n- " + "\n- ".join(problems))
    return {
        "output": output,
        "rows": rows,
        "parquet_files": len(parts),
        "schema": schema,
        "images_found": metrics["images_found"],
        "corrupt_count": metrics["corrupt_count"],
        "corrupt": [
            f"{params['images_prefix']}{item['path']}: {item['error']}" for item in metrics["corrupt"]
        ],
        "pca_k": metrics["pca_k"],
        "explained_variance": metrics["explained_variance"],
        "model": metrics["model"],
        "weights": metrics["weights"],
    }


def exported_model(model: dict[str, Any]) -> dict[str, Any]:
    """The ONNX model is in S3 (exported by this run or an earlier one), with what the export recorded
    about it (`model.json`: model, weights, torch vs ONNX difference); FileNotFoundError when it is not.
    The two objects are read at once; a missing model is still the error named first."""
    from concurrent.futures import ThreadPoolExecutor

    from orchard import aws
    from orchard.fruit_features.plan import object_exists

    s3 = aws.client("s3")
    with ThreadPoolExecutor(max_workers=1) as pool:
        info_read = pool.submit(read_json, s3, f"{model['prefix']}model.json")
        if not object_exists(s3, model["uri"]):
            raise FileNotFoundError(
                f"{model['uri']} is missing after the export: see the export_model task log"
            )
        info = info_read.result()
    print(f"model {info['model']} ({info['weights']}); torch vs ONNX max abs diff {info['max_abs_diff']:.2e}")
    return {**model, "info": info}


def scaling_record(emr: Any, s3: Any, cluster_id: str, step_id: str, point: dict[str, Any]) -> dict[str, Any]:
    """One scaling point: the step's wall time (EMR's timeline) and images/s, with the job's own timings.
    The step and the job's metrics.json are read at once."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        metrics_read = pool.submit(read_json, s3, f"{point['output']}metrics.json")
        step = emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
        metrics = metrics_read.result()
    timeline = step["Status"]["Timeline"]
    wall = (timeline["EndDateTime"] - timeline["StartDateTime"]).total_seconds()
    return {
        "core_nodes": point["core_nodes"],
        "cluster_id": cluster_id,
        "step_id": step_id,
        "step_wall_s": round(wall, 2),
        "images": metrics["images_found"],
        "images_per_s": round(metrics["images_found"] / wall, 3) if wall > 0 else None,
        "feature_stage_images_per_s": metrics["images_per_second"],
        "spark_parallelism": metrics["default_parallelism"],
        "timings": metrics["timings"],
    }


def scaling_records(pulled: Any) -> list[dict[str, Any]]:
    """The scaling points' records as a list, whatever shape the mapped group's XCom arrives in.

    A task downstream of a task group mapped over ONE element gets that element's record itself (a dict),
    not a one-item list; with several elements it gets a lazy sequence. Both become a list of records.
    """
    if isinstance(pulled, dict):
        return [pulled]
    records = list(pulled)
    if not records or not all(isinstance(record, dict) for record in records):
        raise ValueError(f"expected one scaling record (dict) per core node count, got {records!r:.300}")
    return records


def speedups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each point's speed-up over the smallest node count (wall time ratio), and its efficiency."""
    ordered = sorted(scaling_records(records), key=lambda r: r["core_nodes"])
    base = ordered[0]
    rows = []
    for record in ordered:
        speedup = base["step_wall_s"] / record["step_wall_s"] if record["step_wall_s"] else None
        ideal = record["core_nodes"] / base["core_nodes"]
        rows.append(
            {
                **record,
                "speedup": round(speedup, 3) if speedup else None,
                "efficiency": round(speedup / ideal, 3) if speedup else None,
            }
        )
    return rows


def cluster_seconds(emr: Any, cluster_id: str) -> float:
    """Seconds from creation to termination (to now while the cluster still runs)."""
    timeline = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["Timeline"]
    end = timeline.get("EndDateTime") or datetime.now(UTC)
    return max((end - timeline["CreationDateTime"]).total_seconds(), 0.0)
