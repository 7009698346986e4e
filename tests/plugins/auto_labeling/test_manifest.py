"""Detector responses → Ground Truth bounding-box manifest, checked against the format AWS documents."""

from __future__ import annotations

import json

import pytest

from orchard.auto_labeling import manifest

# The bounding-box job output line AWS documents (SageMaker Ground Truth "Bounding Box Job Output", as
# quoted by Rekognition Custom Labels' "Object localization in manifest files"), with its values.
DOCUMENTED = json.loads(
    '{"source-ref": "s3://bucket/images/IMG_1186.png", "bounding-box": {"image_size": [{"width": 640, "height": 480, '
    '"depth": 3}], "annotations": [{ "class_id": 1, "top": 251, "left": 399, "width": 155, "height": 101}, '
    '{"class_id": 0, "top": 65, "left": 86, "width": 220, "height": 334}]}, "bounding-box-metadata": {"objects": '
    '[{ "confidence": 1}, {"confidence": 1}], "class-map": {"0": "Echo", "1": "Echo Dot"}, "type": '
    '"groundtruth/object-detection", "human-annotated": "yes", "creation-date": "2013-11-18T02:53:27", "job-name": "my job"}}'
)
HANDLER_RESPONSE = {
    "model": "opencv-hog-people-detector",
    "image_size": {"width": 640, "height": 480, "depth": 3},
    "detections": [
        {"label": "Echo Dot", "box": [399, 251, 155, 101], "score": 0.91},
        {"label": "Echo", "box": [86, 65, 220, 334], "score": 0.77},
        {"label": "Echo", "box": [10, 10, 20, 20], "score": 0.2},  # below the threshold
        {"label": "cat", "box": [5, 5, 5, 5], "score": 0.99},  # not a category of this job
    ],
}


def line(response, threshold=0.5, **kwargs):
    return manifest.manifest_line(
        "s3://bucket/images/IMG_1186.png",
        response,
        label_attribute="bounding-box",
        categories=["Echo", "Echo Dot"],
        threshold=threshold,
        job_name="my-job",
        creation_date="2013-11-18T02:53:27",
        **kwargs,
    )


def test_a_line_has_the_documented_shape_and_values():
    produced = line(HANDLER_RESPONSE)

    assert produced.keys() == DOCUMENTED.keys()
    assert produced["bounding-box"] == DOCUMENTED["bounding-box"]
    metadata, documented = produced["bounding-box-metadata"], DOCUMENTED["bounding-box-metadata"]
    assert metadata.keys() == documented.keys()
    assert metadata["class-map"] == documented["class-map"] and metadata["type"] == documented["type"]
    assert metadata["objects"] == [{"confidence": 0.91}, {"confidence": 0.77}]
    assert metadata["human-annotated"] == "no"  # a model, not a person, drew these boxes
    assert metadata["job-name"] == "labeling-job/my-job"


def test_golden_jsonl_line():
    text = manifest.to_jsonl([line(HANDLER_RESPONSE)])
    assert text == (
        '{"source-ref": "s3://bucket/images/IMG_1186.png", "bounding-box": {"image_size": [{"width": 640, "height": 480, '
        '"depth": 3}], "annotations": [{"class_id": 1, "left": 399, "top": 251, "width": 155, "height": 101}, '
        '{"class_id": 0, "left": 86, "top": 65, "width": 220, "height": 334}]}, "bounding-box-metadata": {"objects": '
        '[{"confidence": 0.91}, {"confidence": 0.77}], "class-map": {"0": "Echo", "1": "Echo Dot"}, "type": '
        '"groundtruth/object-detection", "human-annotated": "no", "creation-date": "2013-11-18T02:53:27", '
        '"job-name": "labeling-job/my-job"}}\n'
    )


@pytest.mark.parametrize(("threshold", "kept"), [(0.0, 3), (0.5, 2), (0.8, 1), (0.95, 0)])
def test_threshold_keeps_only_confident_boxes_of_the_categories(threshold, kept):
    produced = line(HANDLER_RESPONSE, threshold=threshold)
    assert len(produced["bounding-box"]["annotations"]) == kept
    assert len(produced["bounding-box-metadata"]["objects"]) == kept


def test_boxes_are_clipped_to_the_image_and_empty_ones_dropped():
    response = {
        "image_size": {"width": 100, "height": 50},
        "detections": [
            {"label": "Echo", "box": [-10, 40, 50, 30], "score": 0.9},
            {"label": "Echo", "box": [120, 0, 10, 10], "score": 0.9},
        ],
    }
    assert line(response)["bounding-box"]["annotations"] == [
        {"class_id": 0, "left": 0, "top": 40, "width": 40, "height": 10}
    ]


# JumpStart's Mask R-CNN (GluonCV) response: parallel lists, pixel corner boxes, -1 padding, class names.
MASK_RCNN = {
    "ids": [[1.0], [0.0], [-1.0]],
    "scores": [[0.93], [0.41], [-1.0]],
    "bboxes": [[399.2, 251.0, 554.4, 352.0], [86.0, 65.0, 306.0, 399.0], [-1, -1, -1, -1]],
    "labels": ["Echo", "Echo Dot"],
}


def test_mask_rcnn_response_is_adapted():
    detections = manifest.detections_from_response(MASK_RCNN)["detections"]
    assert detections == [
        {"label": "Echo Dot", "box": [399, 251, 155, 101], "score": 0.93},
        {"label": "Echo", "box": [86, 65, 220, 334], "score": 0.41},
    ]
    produced = line(MASK_RCNN, threshold=0.4, image_size={"width": 640, "height": 480, "depth": 3})
    assert produced["bounding-box"] == DOCUMENTED["bounding-box"]


def test_mask_rcnn_without_image_size_needs_one():
    with pytest.raises(manifest.ResponseFormatError, match="no image_size"):
        line(MASK_RCNN)


def test_unknown_response_is_refused_with_the_formats_expected():
    with pytest.raises(manifest.ResponseFormatError, match="'ids', 'scores', 'bboxes', 'labels'"):
        manifest.detections_from_response({"predictions": []})


def test_label_categories_and_worker_template():
    assert manifest.label_categories(["car", "pedestrian"], "adjust")["labels"] == [
        {"label": "car"},
        {"label": "pedestrian"},
    ]
    template = manifest.worker_template("adjust", "prelabel")
    assert "<crowd-bounding-box" in template and "task.input.manifestLine.prelabel.annotations" in template
    assert "initial-value=" in template and "grant_read_access" in template


def test_verification_keeps_the_original_labels_and_uses_the_verification_template():
    """Ground Truth: a verification job's label category file "must contain the same labels used in the
    original labeling job" (sms-data-verify-start-api); a bounding-box verification worker grades the boxes
    on a crowd-image-classifier overlay, without changing them (sms-ui-template-crowd-image-classifier)."""
    assert manifest.label_categories(["car", "pedestrian"], "verify")["labels"] == [
        {"label": "car"},
        {"label": "pedestrian"},
    ]
    template = manifest.worker_template("verify", "prelabel")
    assert "<crowd-image-classifier" in template and "<crowd-bounding-box" not in template
    assert "categories=\"['good', 'bad']\"" in template
    assert 'overlay="{ boundingBox: {' in template
    assert "task.input.manifestLine.prelabel.annotations" in template
    assert "task.input.manifestLine.prelabel-metadata.class-map" in template


def test_verified_dataset_counts_verify_and_adjust_outputs():
    source = line(HANDLER_RESPONSE)
    good = {**source, "check": 0, "check-metadata": {"class-name": "good", "human-annotated": "yes"}}
    bad = {**source, "check": 1, "check-metadata": {"class-name": "bad", "human-annotated": "yes"}}
    verified = manifest.verified_dataset(
        [good, bad, source], source_attribute="bounding-box", verified_attribute="check", mode="verify"
    )
    assert verified["counts"] == {
        "verified": 1,
        "adjusted": 0,
        "rejected": 1,
        "unlabeled": 1,
        "human_annotated": 2,
    }
    assert verified["records"][0]["annotations"] == source["bounding-box"]["annotations"]

    moved = {
        "image_size": source["bounding-box"]["image_size"],
        "annotations": source["bounding-box"]["annotations"][:1],
    }
    adjusted = {
        **source,
        "fix": moved,
        "fix-metadata": {"adjustment-status": "adjusted", "human-annotated": "yes"},
    }
    same = {**source, "fix": source["bounding-box"], "fix-metadata": {"adjustment-status": "unadjusted"}}
    emptied = {**source, "fix": {"annotations": []}, "fix-metadata": {"adjustment-status": "adjusted"}}
    counts = manifest.verified_dataset(
        [adjusted, same, emptied], source_attribute="bounding-box", verified_attribute="fix", mode="adjust"
    )["counts"]
    assert counts == {"verified": 1, "adjusted": 1, "rejected": 1, "unlabeled": 0, "human_annotated": 1}
