"""The metadata builder (recommended set), the RGB conversion (clip fix) and the bad-input errors."""

from __future__ import annotations

import json

from tests.include.aerial_pretraining.conftest import copy_raw, result


def test_recommended_set_excludes_snow_cloud_shadow_and_label_less_patches(job, raw_dataset):
    done = job(f"""
        import json
        from metadata import build_metadata
        m = build_metadata('{raw_dataset}')
        print(json.dumps({{"excluded": m.excluded, "splits": m.split_counts(), "names": [r["name"] for r in m.rows],
                           "labels": {{r["name"]: list(r["new_labels"]) for r in m.rows}}}}))
    """)
    found = result(done)
    assert found["excluded"] == {"seasonal_snow": 3, "cloud_and_shadow": 3, "no_ben19_label": 1}
    assert found["splits"] == {"train": 36, "val": 12, "test": 12}
    snow = (raw_dataset / "patches_with_seasonal_snow.csv").read_text().split()
    cloud = (raw_dataset / "patches_with_cloud_and_shadow.csv").read_text().split()
    assert not set(found["names"]) & set(snow + cloud)
    assert "S2A_MSIL2A_20170613T101031_only_airport" not in found["names"]
    # BEN-43 -> BEN-19: e.g. "Non-irrigated arable land" becomes "Arable land", "Water bodies" "Inland waters".
    first = found["names"][0]
    raw_labels = json.loads((raw_dataset / first / f"{first}_labels_metadata.json").read_text())["labels"]
    mapping = {
        "Coniferous forest": "Coniferous forest",
        "Water bodies": "Inland waters",
        "Non-irrigated arable land": "Arable land",
        "Discontinuous urban fabric": "Urban fabric",
        "Pastures": "Pastures",
        "Beaches, dunes, sands": "Beaches, dunes, sands",
    }
    assert set(found["labels"][first]) == {mapping[label] for label in raw_labels}


def test_rgb_scales_by_2000_and_clips_at_255_not_225(job):
    done = job("""
        import json, numpy as np
        from bands import to_rgb
        band = np.array([[0, 1000, 1900, 2000, 2200, 9000]], dtype=np.uint16)
        print(json.dumps(to_rgb(band, band, band)[0, :, 0].tolist()))
    """)
    assert result(done) == [0, 127, 242, 255, 255, 255]  # the seed's clip gave 225 from 1765 up


def test_prepare_writes_parquet_rgb_images_and_summary(prepared_dataset, raw_dataset, job):
    summary = json.loads((prepared_dataset / "summary.json").read_text())
    assert summary["patches"] == 60 and summary["splits"] == {"train": 36, "val": 12, "test": 12}
    assert len(list((prepared_dataset / "rgb").glob("*.tif"))) == 60
    name = sorted((raw_dataset / "train.csv").read_text().split())[0]
    done = job(f"""
        import json, numpy as np, tifffile
        from bands import read_rgb
        print(json.dumps(bool((tifffile.imread('{prepared_dataset}/rgb/{name}.tif') == read_rgb('{raw_dataset}', '{name}')).all())))
    """)
    assert result(done) is True


def test_unknown_label_names_the_label_and_the_file(job, raw_dataset, tmp_path):
    raw = copy_raw(raw_dataset, tmp_path / "raw")
    name = (raw / "val.csv").read_text().split()[0]
    metadata_file = raw / name / f"{name}_labels_metadata.json"
    record = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps({**record, "labels": ["Lunar regolith"]}))
    done = job(
        f"import prepare_dataset; prepare_dataset.main(['--input_dir', '{raw}', '--output_dir', '{tmp_path}/out', "
        f"'--failure_file', '{tmp_path}/failure'])",  # never the host's /opt/ml: this runs outside a job
        check=False,
    )
    assert done.returncode != 0
    assert (
        "UnknownLabelError: unknown land-cover label 'Lunar regolith'" in done.stderr
        and str(metadata_file) in done.stderr
    )


def test_missing_band_file_names_the_file(job, raw_dataset, tmp_path):
    raw = copy_raw(raw_dataset, tmp_path / "raw")
    name = (raw / "test.csv").read_text().split()[0]
    (raw / name / f"{name}_B03.tif").unlink()
    done = job(
        f"import prepare_dataset; prepare_dataset.main(['--input_dir', '{raw}', '--output_dir', '{tmp_path}/out', "
        f"'--failure_file', '{tmp_path}/failure'])",  # never the host's /opt/ml: this runs outside a job
        check=False,
    )
    assert done.returncode != 0
    assert f"MissingBandError: missing band file {raw / name / f'{name}_B03.tif'}" in done.stderr
    assert not (tmp_path / "out" / "metadata").exists()  # nothing half-written


def test_empty_split_names_the_split_and_its_list(job, raw_dataset, tmp_path):
    raw = copy_raw(raw_dataset, tmp_path / "raw")
    snow = (raw / "patches_with_seasonal_snow.csv").read_text().split()
    (raw / "val.csv").write_text("".join(f"{n}\n" for n in snow))  # only excluded patches left
    done = job(f"from metadata import build_metadata; build_metadata('{raw}')", check=False)
    assert (
        "EmptySplitError: split 'val' is empty after exclusions" in done.stderr
        and str(raw / "val.csv") in done.stderr
    )


def test_an_input_error_is_final_and_names_the_s3_object_not_the_container_path(job, raw_dataset, tmp_path):
    """13.3 / 13.9: exit 65 and `InputError: ` first in /opt/ml/output/failure (SageMaker's FailureReason),
    so the operator fails the task without retry; the message names the S3 URI the user uploaded."""
    raw = copy_raw(raw_dataset, tmp_path / "raw")
    name = (raw / "test.csv").read_text().split()[0]
    (raw / name / f"{name}_B03.tif").unlink()
    failure = tmp_path / "output" / "failure"
    uri = "s3://orchard-data/aerial_pretraining/bigearthnet-s2/"
    done = job(
        f"import prepare_dataset; prepare_dataset.main(['--input_dir', '{raw}', '--output_dir', "
        f"'{tmp_path}/out', '--input_uri', '{uri}', '--failure_file', '{failure}'])",
        check=False,
    )
    assert done.returncode == 65, done.stderr[-2000:]
    reason = failure.read_text()
    assert reason.startswith(f"InputError: MissingBandError: missing band file {uri}{name}/{name}_B03.tif")
    assert str(raw) not in reason and str(raw) not in done.stderr


def test_a_baseline_of_another_architecture_is_an_input_error_naming_its_uri(job, raw_dataset, tmp_path):
    from local_aws.demo_data.aerial_pretraining import write_random_baseline

    baseline = tmp_path / "baseline"
    baseline.mkdir()
    write_random_baseline(baseline / "dino.pth")  # vit_demo/16
    failure = tmp_path / "failure"
    uri = "s3://orchard-artifacts/aerial_pretraining/baselines/dino.pth"
    done = job(
        f"import prepare_dataset; prepare_dataset.main(['--input_dir', '{raw_dataset}', "
        f"'--output_dir', '{tmp_path}/out', '--baseline_dir', '{baseline}', "
        f"'--baseline_uri', '{uri}', '--arch', 'vit_small', '--failure_file', '{failure}'])",
        check=False,
    )
    assert done.returncode == 65, done.stderr[-2000:]
    reason = failure.read_text()
    assert reason.startswith("InputError: CheckpointMismatchError")
    assert uri in reason and str(baseline) not in reason
