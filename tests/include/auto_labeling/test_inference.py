"""The detector's inference handler, run in its own job environment on generated frames."""

from __future__ import annotations

import json
import textwrap

from local_aws.demo_data import auto_labeling as demo

DRIVER = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, os.getcwd())  # the job folder, as the image's code dir
    import inference
    model = inference.model_fn(sys.argv[1])
    results = []
    for path in sys.argv[2:]:
        body = open(path, "rb").read()
        try:
            results.append(json.loads(inference.output_fn(inference.predict_fn(inference.input_fn(body, "image/png"), model), "application/json")))
        except ValueError as error:
            results.append({"error": str(error)})
    print(json.dumps(results))
""")


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_the_hog_detector_finds_the_drawn_pedestrians(run_job_python, tmp_path):
    drawn, paths = [], []
    for seed in range(6):
        png, boxes = demo.frame(seed)
        (tmp_path / f"{seed}.png").write_bytes(png)
        paths.append(str(tmp_path / f"{seed}.png"))
        drawn.append(boxes)
    (tmp_path / "broken.png").write_bytes(b"nope")
    (tmp_path / "detector.json").write_text(json.dumps(demo.DETECTOR_SETTINGS))
    (tmp_path / "driver.py").write_text(DRIVER)

    done = run_job_python(
        "auto_labeling", str(tmp_path / "driver.py"), str(tmp_path), *paths, str(tmp_path / "broken.png")
    )

    assert done.returncode == 0, done.stderr
    *results, broken = json.loads(done.stdout)
    assert "not a decodable image" in broken["error"]
    found = sum(
        1
        for boxes, result in zip(drawn, results, strict=True)
        for box in boxes
        if any(iou(box, d["box"]) > 0.3 for d in result["detections"])
    )
    assert found >= 0.7 * sum(len(b) for b in drawn)
    assert all(0 < d["score"] < 1 and d["label"] == "pedestrian" for r in results for d in r["detections"])
    assert results[0]["image_size"] == {"width": 640, "height": 360, "depth": 3}


def test_an_empty_or_undecodable_frame_is_refused_in_plain_words(run_job_python, tmp_path):
    """Issue 13.9: a 0-byte frame was refused with OpenCV's own assertion text (cv2.error:
    "!buf.empty() in function 'imdecode_'"): now a ValueError saying the frame is empty, and the fix."""
    driver = textwrap.dedent("""
        import json, os, sys
        sys.path.insert(0, os.getcwd())
        import inference
        results = []
        for path in sys.argv[1:]:
            try:
                inference.input_fn(open(path, "rb").read(), "image/png")
                results.append({"ok": True})
            except Exception as error:
                results.append({"type": type(error).__name__, "error": str(error)})
        print(json.dumps(results))
    """)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "driver.py").write_text(driver)

    frames = [str(tmp_path / "empty.png"), str(tmp_path / "garbage.png")]
    done = run_job_python("auto_labeling", str(tmp_path / "driver.py"), *frames)

    assert done.returncode == 0, done.stderr
    empty, garbage = json.loads(done.stdout)
    assert empty["type"] == "ValueError" and "empty (0 bytes)" in empty["error"], empty
    assert "imdecode" not in empty["error"] and "re-upload" in empty["error"]
    assert garbage["type"] == "ValueError" and "not a decodable image" in garbage["error"], garbage
