"""The dataset class and its one-hot labels, the backbone checkpoint check, the linear probe, and mAP."""

from __future__ import annotations

import json

from tests.include.aerial_pretraining.conftest import result


def test_dataset_yields_images_and_one_hot_labels_of_its_split(job, prepared_dataset, raw_dataset):
    done = job(f"""
        import json, torch
        from dataset import BigEarthNetDataset
        from labels import LAND_COVER_LABELS
        meta = '{prepared_dataset}/metadata/final_ben_s2.parquet'
        test = BigEarthNetDataset(meta, '{prepared_dataset}/rgb', split='test')
        bands = BigEarthNetDataset(meta, '{raw_dataset}', split='test', source='bands')
        image, label = test[0]
        print(json.dumps({{"len": len(test), "shape": list(image.shape), "range": [image.min().item(), image.max().item()],
                           "same_as_bands": bool(torch.equal(image, bands[0][0])), "name": test.patch_names[0],
                           "label": [LAND_COVER_LABELS[i] for i, v in enumerate(label.tolist()) if v == 1.0],
                           "label_sum": label.sum().item(), "classes": len(label)}}))
    """)
    found = result(done)
    assert (
        found["len"] == 12
        and found["shape"] == [3, 120, 120]
        and 0 <= found["range"][0] <= found["range"][1] <= 1
    )
    assert found["same_as_bands"] is True and found["classes"] == 19
    raw_labels = json.loads(
        (raw_dataset / found["name"] / f"{found['name']}_labels_metadata.json").read_text()
    )["labels"]
    assert len(found["label"]) == found["label_sum"] == len(raw_labels)


def test_one_hot_rejects_an_unknown_label(job):
    done = job(
        "from labels import one_hot; one_hot(['Arable land', 'Moon dust'], where='patch X')", check=False
    )
    assert "UnknownLabelError: unknown BEN-19 label 'Moon dust' in patch X" in done.stderr


def test_a_checkpoint_of_another_architecture_fails_prepare_before_any_training(job, raw_dataset, tmp_path):
    job(
        f"from checkpoint import write_random_backbone; write_random_backbone('{tmp_path}/baseline/dino.pth', 'vit_demo', 16)"
    )
    done = job(
        f"import prepare_dataset; prepare_dataset.main(['--input_dir', '{raw_dataset}', '--output_dir', '{tmp_path}/out', "
        f"'--baseline_dir', '{tmp_path}/baseline', '--arch', 'vit_small', '--patch_size', '16', "
        f"'--failure_file', '{tmp_path}/failure'])",  # never the host's /opt/ml: this runs outside a job
        check=False,
    )
    assert done.returncode != 0
    assert (
        f"CheckpointMismatchError: checkpoint {tmp_path}/baseline/dino.pth holds another architecture (embed_dim 64, depth 2, patch 16)"
        in done.stderr
    )
    assert "vit_small = embed_dim 384, depth 12, patch 16" in done.stderr


def test_upstream_dino_checkpoint_format_loads(job, tmp_path):
    """The released DINO weights are a bare backbone state dict; our training checkpoints nest the teacher."""
    done = job(f"""
        import json, torch
        from checkpoint import load_backbone
        from vit import build_vit
        torch.manual_seed(1)
        model = build_vit('vit_demo', 16)
        torch.save(model.state_dict(), '{tmp_path}/upstream.pth')
        torch.save({{'teacher': {{f'backbone.{{k}}': v for k, v in model.state_dict().items()}} | {{'head.mlp.0.weight': torch.zeros(1)}}}}, '{tmp_path}/ours.pth')
        loaded = [load_backbone('{tmp_path}/' + name, 'vit_demo', 16) for name in ('upstream.pth', 'ours.pth')]
        print(json.dumps([all(torch.equal(v, m.state_dict()[k]) for k, v in model.state_dict().items()) for m in loaded]))
    """)
    assert result(done) == [True, True]


def test_linear_probe_writes_test_map_for_the_backbone(job, prepared_dataset, tmp_path):
    job(
        f"from checkpoint import write_random_backbone; write_random_backbone('{tmp_path}/backbone/b.pth', 'vit_demo', 16)"
    )
    done = job(f"""
        import probe
        probe.main(['--arch', 'vit_demo', '--image_size', '32', '--epochs', '5', '--backbone_name', 'random',
                    '--backbone_dir', '{tmp_path}/backbone', '--metadata_dir', '{prepared_dataset}/metadata',
                    '--data_dir', '{prepared_dataset}/rgb', '--output_dir', '{tmp_path}/model'])
    """)
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["backbone"] == "random" and metrics["samples"] == 12 and len(metrics["history"]) == 5
    assert 0 < metrics["macro_mAP"] <= 1 and len(metrics["per_class_AP"]) == 19
    assert "[probe] test_mAP=" in done.stdout and (tmp_path / "model" / "linear_head.pth").is_file()


def test_map_equals_scikit_learn_on_random_cases(sklearn_job):
    done = sklearn_job("""
        import json, numpy as np
        from sklearn.metrics import average_precision_score
        from metrics import map_scores
        rng = np.random.default_rng(0)
        worst = 0.0
        for case in range(40):
            n, k = int(rng.integers(5, 200)), int(rng.integers(2, 19))
            y = (rng.random((n, k)) < rng.uniform(0.05, 0.6)).astype(int)
            y[rng.integers(0, n, k), np.arange(k)] = 1  # every class has a positive
            scores = rng.random((n, k))
            if case % 3 == 0:
                scores = np.round(scores, 1)  # many ties
            ours = map_scores(y, scores, [str(i) for i in range(k)])
            worst = max(worst,
                        abs(ours["macro_mAP"] - average_precision_score(y, scores, average="macro")),
                        abs(ours["micro_AP"] - average_precision_score(y, scores, average="micro")),
                        *[abs(ours["per_class_AP"][str(i)] - average_precision_score(y[:, i], scores[:, i])) for i in range(k)])
        print(json.dumps(worst))
    """)
    assert result(done) < 1e-12
