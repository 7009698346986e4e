"""Detector responses → Ground Truth bounding-box manifest lines, and verified labels back.

Plain functions on JSON-safe data (no Airflow, no numpy): the DAG's tasks call them, tests check them
against the format AWS documents for a bounding-box job's output (one JSON line per image):

    {"source-ref": "s3://bucket/frame.png",
     "<label-attribute>": {"image_size": [{"width": 640, "height": 360, "depth": 3}],
                           "annotations": [{"class_id": 0, "left": 10, "top": 20, "width": 40, "height": 80}]},
     "<label-attribute>-metadata": {"objects": [{"confidence": 0.91}], "class-map": {"0": "pedestrian"},
                                    "type": "groundtruth/object-detection", "human-annotated": "no",
                                    "creation-date": "2026-11-21T09:00:00.000000", "job-name": "labeling-job/<name>"}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

OBJECT_DETECTION = "groundtruth/object-detection"


class ResponseFormatError(ValueError):
    """A response that is neither this project's handler format nor JumpStart Mask R-CNN's."""


def detections_from_response(response: dict[str, Any]) -> dict[str, Any]:
    """Normalise a model response to {image_size, detections: [{label, box: [l, t, w, h], score}]}.

    Accepts the endpoint handler's own format (include/auto_labeling/inference.py) and the JumpStart Mask R-CNN
    (GluonCV) response: parallel lists `ids`, `scores`, `bboxes` ([xmin, ymin, xmax, ymax] pixels) plus
    `labels`, the class names indexed by id; GluonCV pads with id -1 / score -1, dropped here.
    """
    if "detections" in response:
        return {"image_size": response.get("image_size"), "detections": list(response["detections"])}
    if {"ids", "scores", "bboxes", "labels"} <= response.keys():
        return {"image_size": response.get("image_size"), "detections": _from_mask_rcnn(response)}
    raise ResponseFormatError(
        f"unknown detector response (keys {sorted(response)}): expected 'detections' (orchard's handler) "
        "or 'ids', 'scores', 'bboxes', 'labels' (JumpStart Mask R-CNN)"
    )


def _from_mask_rcnn(response: dict[str, Any]) -> list[dict[str, Any]]:
    ids, scores, boxes, names = (
        _flat(response["ids"]),
        _flat(response["scores"]),
        response["bboxes"],
        response["labels"],
    )
    if len(ids) != len(scores) or len(ids) != len(boxes):
        raise ResponseFormatError(
            f"Mask R-CNN response with {len(ids)} ids, {len(scores)} scores, {len(boxes)} boxes"
        )
    detections = []
    for class_id, score, box in zip(ids, scores, boxes, strict=True):
        if class_id < 0 or score < 0:
            continue  # GluonCV padding
        xmin, ymin, xmax, ymax = (float(v) for v in box)
        detections.append(
            {
                "label": names[int(class_id)] if int(class_id) < len(names) else str(int(class_id)),
                "box": [round(xmin), round(ymin), round(xmax - xmin), round(ymax - ymin)],
                "score": float(score),
            }
        )
    return detections


def _flat(values: Sequence[Any]) -> list[float]:
    """GluonCV returns ids and scores as [[v], [v], ...]."""
    return [float(v[0]) if isinstance(v, (list, tuple)) else float(v) for v in values]


def manifest_line(
    source_ref: str,
    response: dict[str, Any],
    *,
    label_attribute: str,
    categories: Sequence[str],
    threshold: float,
    job_name: str,
    image_size: dict[str, int] | None = None,
    creation_date: str | None = None,
) -> dict[str, Any]:
    """One bounding-box manifest line: the detections of `categories` scoring ≥ threshold.

    Boxes are clipped to the image (Ground Truth refuses boxes outside it); class ids index `categories`.
    """
    normalised = detections_from_response(response)
    size = image_size or normalised["image_size"]
    if not size:
        raise ResponseFormatError(f"{source_ref}: the response has no image_size and none was given")
    class_ids = {name: index for index, name in enumerate(categories)}
    annotations, objects = [], []
    for detection in normalised["detections"]:
        if detection["label"] not in class_ids or float(detection["score"]) < threshold:
            continue
        box = _clip(detection["box"], size["width"], size["height"])
        if box is None:
            continue
        left, top, width, height = box
        annotations.append(
            {
                "class_id": class_ids[detection["label"]],
                "left": left,
                "top": top,
                "width": width,
                "height": height,
            }
        )
        objects.append({"confidence": round(float(detection["score"]), 4)})
    return {
        "source-ref": source_ref,
        label_attribute: {
            "image_size": [{"width": size["width"], "height": size["height"], "depth": size.get("depth", 3)}],
            "annotations": annotations,
        },
        f"{label_attribute}-metadata": {
            "objects": objects,
            "class-map": {str(i): name for i, name in enumerate(categories)},
            "type": OBJECT_DETECTION,
            "human-annotated": "no",
            "creation-date": creation_date or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "job-name": f"labeling-job/{job_name}",
        },
    }


def _clip(box: Sequence[float], width: int, height: int) -> list[int] | None:
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(width, int(box[0] + box[2])), min(height, int(box[1] + box[3]))
    if right <= left or bottom <= top:
        return None
    return [left, top, right - left, bottom - top]


def to_jsonl(lines: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(line, separators=(", ", ": ")) + "\n" for line in lines)


# The grades a verification worker chooses from (crowd-image-classifier `categories`); the first accepts.
VERIFICATION_GRADES = ("good", "bad")


def label_categories(categories: Sequence[str], mode: str) -> dict[str, Any]:
    """The label category configuration file Ground Truth reads (LabelCategoryConfigS3Uri).

    Verification and adjustment alike: it "must contain the same labels used in the original labeling job"
    ("Start a label verification or adjustment job (API)",
    https://docs.aws.amazon.com/sagemaker/latest/dg/sms-data-verify-start-api.html) — here the pre-labels'
    class-map, i.e. `categories`. A verification worker's grades are not labels: they are the template's.
    """
    if mode not in ("verify", "adjust"):
        raise ValueError(f"labeling mode {mode!r} is not verify or adjust")
    return {"document-version": "2018-11-28", "labels": [{"label": name} for name in categories]}


def _boxes(source_label_attribute: str) -> str:
    """Liquid: the pre-labels of the manifest line as [{label, left, top, width, height}, ...]."""
    line = "task.input.manifestLine"
    return (
        f"[{{% for box in {line}.{source_label_attribute}.annotations %}}"
        "{% capture class_id %}{{ box.class_id }}{% endcapture %}"
        f"{{% assign label = {line}.{source_label_attribute}-metadata.class-map[class_id] %}}"
        "{ label: {{label | to_json | escape}}, left: {{box.left}}, top: {{box.top}}, width: {{box.width}}, "
        "height: {{box.height}} },{% endfor %}]"
    )


def worker_template(mode: str, source_label_attribute: str) -> str:
    """The worker UI, a Liquid template showing the pre-labels of `source_label_attribute`.

    adjust: `crowd-bounding-box` with the pre-labels as `initial-value` (the worker moves, adds, removes
    boxes). verify: `crowd-image-classifier` with the pre-labels as its bounding-box `overlay` and the grades
    as `categories`, the element Ground Truth documents "for verification workflows of bounding-box ...
    tasks" (https://docs.aws.amazon.com/sagemaker/latest/dg/sms-ui-template-crowd-image-classifier.html);
    the worker grades the boxes and cannot change them.
    """
    boxes = _boxes(source_label_attribute)
    if mode == "verify":
        grades = ", ".join(f"'{grade}'" for grade in VERIFICATION_GRADES)
        header = "Are the boxes tight around every object of the listed classes?"
        return f"""<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-image-classifier
    name="verification"
    src="{{{{ task.input.taskObject | grant_read_access }}}}"
    header="{header}"
    categories="[{grades}]"
    overlay="{{ boundingBox: {{ labels: {{{{ task.input.labels | to_json | escape }}}}, value: {boxes} }} }}"
  >
    <full-instructions header="Verification instructions">
      <p>good: every object of the listed classes has one tight box.</p>
      <p>bad: a box is missing, loose or wrong.</p>
    </full-instructions>
    <short-instructions>{header}</short-instructions>
  </crowd-image-classifier>
</crowd-form>
"""
    if mode != "adjust":
        raise ValueError(f"labeling mode {mode!r} is not verify or adjust")
    header = "Adjust the boxes so each one is tight around one object"
    return f"""<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-bounding-box
    name="annotatedResult"
    src="{{{{ task.input.taskObject | grant_read_access }}}}"
    header="{header}"
    labels="{{{{ task.input.labels | to_json | escape }}}}"
    initial-value="{boxes}"
  >
    <full-instructions header="Bounding box instructions">
      <p>Draw one tight box per object; remove boxes around nothing.</p>
    </full-instructions>
    <short-instructions>{header}</short-instructions>
  </crowd-bounding-box>
</crowd-form>
"""


def verified_dataset(
    output_lines: Iterable[dict[str, Any]], *, source_attribute: str, verified_attribute: str, mode: str
) -> dict[str, Any]:
    """Read a labeling job's output manifest: the verified boxes and verified / adjusted / rejected counts.

    verify: the job's attribute holds the grade (class-name `good` → verified, `bad` → rejected) and the
    boxes stay the pre-labels. adjust: the job's attribute holds the boxes after the worker;
    `adjustment-status` says whether they changed (adjusted) or not (verified); no boxes left → rejected.
    """
    counts = {"verified": 0, "adjusted": 0, "rejected": 0, "unlabeled": 0, "human_annotated": 0}
    records = []
    for line in output_lines:
        metadata = line.get(f"{verified_attribute}-metadata")
        if metadata is None or verified_attribute not in line:
            counts["unlabeled"] += 1
            continue
        if metadata.get("human-annotated") == "yes":
            counts["human_annotated"] += 1
        if mode == "verify":
            accepted = metadata.get("class-name") == VERIFICATION_GRADES[0]
            status = "verified" if accepted else "rejected"
            boxes = line[source_attribute]["annotations"] if accepted else []
        else:
            boxes = line[verified_attribute].get("annotations", [])
            status = (
                "rejected"
                if not boxes
                else ("adjusted" if metadata.get("adjustment-status") == "adjusted" else "verified")
            )
        counts[status] += 1
        records.append({"source-ref": line["source-ref"], "status": status, "annotations": boxes})
    return {"counts": counts, "records": records}
