"""DINO training: the student learns, a resumed job continues bit-identically, wrong checkpoints are refused."""

from __future__ import annotations

import shutil

from tests.include.aerial_pretraining.conftest import result

TINY = (
    "'--arch', 'vit_demo', '--batch_size', '8', '--out_dim', '128', '--global_crop_size', '32', "
    "'--local_crop_size', '16', '--local_crops_number', '2', '--num_workers', '0', '--log_every', '100'"
)


def test_dino_loss_decreases_on_generated_images(job, prepared_dataset):
    """Teacher and centre held fixed: the student must learn to match the teacher across fresh multi-crops."""
    done = job(f"""
        import json
        from augment import MultiCropConfig
        from dataset import BigEarthNetDataset
        from train import CropDataset, DinoTrainer, collate, parse_args
        args = parse_args(['--arch', 'vit_demo', '--epochs', '1', '--batch_size', '16', '--out_dim', '256',
                           '--global_crop_size', '64', '--local_crop_size', '32', '--local_crops_number', '2',
                           '--warmup_epochs', '0', '--warmup_teacher_temp_epochs', '0', '--teacher_temp', '0.04',
                           '--lr', '0.01', '--momentum_teacher', '1.0', '--center_momentum', '1.0',
                           '--freeze_last_layer', '0', '--drop_path_rate', '0'])
        images = BigEarthNetDataset('{prepared_dataset}/metadata/final_ben_s2.parquet', '{prepared_dataset}/rgb')
        data = CropDataset(images, MultiCropConfig(64, 32, 2), seed=0)
        trainer = DinoTrainer(args, steps_per_epoch=30)
        losses = []
        for step in range(30):
            data.epoch = step  # new crops every step
            losses.append(trainer.train_step(collate([data[i] for i in range(16)]), 0, step))
        print(json.dumps(losses))
    """)
    losses = result(done)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, losses


def test_resume_from_checkpoint_continues_bit_identically(job, prepared_dataset, tmp_path):
    paths = f"'--metadata_dir', '{prepared_dataset}/metadata', '--data_dir', '{prepared_dataset}/rgb'"
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    job(f"""
        import train
        train.main([{TINY}, {paths}, '--epochs', '3', '--saveckp_freq', '1', '--max_steps_per_epoch', '2',
                    '--checkpoint_dir', '{straight}/ckpt', '--output_dir', '{straight}/model', '--history_dir', '{straight}/out'])
    """)
    # A spot interruption after epoch 1: the new job finds only that epoch's checkpoint in its checkpoint dir.
    (resumed / "ckpt").mkdir(parents=True)
    shutil.copy(straight / "ckpt" / "checkpoint0001.pth", resumed / "ckpt" / "checkpoint.pth")
    done = job(f"""
        import json, torch, train
        train.main([{TINY}, {paths}, '--epochs', '3', '--saveckp_freq', '1', '--max_steps_per_epoch', '2',
                    '--checkpoint_dir', '{resumed}/ckpt', '--output_dir', '{resumed}/model', '--history_dir', '{resumed}/out'])
        a = torch.load('{straight}/ckpt/checkpoint.pth', weights_only=False)
        b = torch.load('{resumed}/ckpt/checkpoint.pth', weights_only=False)
        same = {{net: all(torch.equal(a[net][k], b[net][k]) for k in a[net]) for net in ('student', 'teacher')}}
        same['center'] = torch.equal(a['dino_loss']['center'], b['dino_loss']['center'])
        losses = lambda c: [(h['epoch'], h['loss'], h['lr']) for h in c['history']]  # images/s is wall-clock
        same['history'] = losses(a) == losses(b) and len(a['history']) == 3
        print(json.dumps(same))
    """)
    assert "[dino] resumed from" in done.stdout and "at epoch 1" in done.stdout
    assert result(done) == {"student": True, "teacher": True, "center": True, "history": True}


def test_resuming_a_checkpoint_of_another_architecture_is_refused(job, prepared_dataset, tmp_path):
    paths = f"'--metadata_dir', '{prepared_dataset}/metadata', '--data_dir', '{prepared_dataset}/rgb'"
    job(
        f"import train; train.main([{TINY}, {paths}, '--epochs', '1', '--max_steps_per_epoch', '1', '--checkpoint_dir', '{tmp_path}/ckpt', "
        f"'--output_dir', '{tmp_path}/model', '--history_dir', '{tmp_path}/out'])"
    )
    done = job(
        f"import train; train.main([{TINY.replace('128', '256')}, {paths}, '--epochs', '2', '--checkpoint_dir', '{tmp_path}/ckpt', "
        f"'--output_dir', '{tmp_path}/model', '--history_dir', '{tmp_path}/out'])",
        check=False,
    )
    assert done.returncode != 0
    assert (
        f"CheckpointMismatchError: checkpoint {tmp_path}/ckpt/checkpoint.pth was written for" in done.stderr
    )
    assert "'out_dim': 128" in done.stderr and "'out_dim': 256" in done.stderr


def test_position_embeddings_interpolate_to_other_crop_sizes(job):
    done = job("""
        import json, torch
        from vit import build_vit
        model = build_vit('vit_demo', 16, img_size=64).eval()
        shapes = [list(model(torch.zeros(2, 3, size, size)).shape) for size in (64, 32, 96)]
        print(json.dumps(shapes))
    """)
    assert result(done) == [[2, 64], [2, 64], [2, 64]]
