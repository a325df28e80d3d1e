"""W&B logging, offline: two tiny runs of one ablation family through the real Runner, read back from the run files
(group, tags, config, step metrics, the mask image), then a resume that continues the same run on the same axis."""
import glob
import json
import os.path as osp
import struct

import pytest
import torch
import wandb
from mmengine.config import Config
from mmengine.runner import Runner

from detailclip.engine.hooks.wandb import enable_wandb, run_group, run_tags
from detailclip.testing import ROOT, shrink_model, tiny_config
from tools import sweep

ABLATION = osp.join(ROOT, 'configs/ablations/detailclip/detailclip_vit-tiny-p8_{}_synthetic-world.py')
SWEEPS = sorted(glob.glob(osp.join(ROOT, 'configs', 'sweeps', '*.yaml')))
ITERS, BATCH = 2, 4  # iterations of each run (the resume adds ITERS more), batch size
BLOCK, HEADER = 32768, 7  # the .wandb file is a LevelDB-style log: 32 KiB blocks, 7-byte record headers


def _records(path: str) -> list:
    """Every protobuf record of a ``run-<id>.wandb`` file (wandb 0.31 has no Python reader of its own)."""
    from wandb.proto.wandb_internal_pb2 import Record
    data = open(path, 'rb').read()
    assert data[:4] == b':W&B', path
    pos, chunk, records = HEADER, b'', []
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack('<IHB', data[pos:pos + HEADER])  # crc32c, length, FULL/FIRST/MIDDLE/LAST
        chunk += data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (1, 4):  # FULL or LAST: the record is complete
            records.append(Record.FromString(chunk))
            chunk = b''
    return records


def _read_run(path: str) -> dict:
    """The run record, the config, the history rows and the defined metrics of one run file."""
    records = _records(path)
    run = next(r.run for r in records if r.HasField('run'))
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    rows = [{'/'.join(item.nested_key) or item.key: json.loads(item.value_json) for item in r.history.item}
            for r in records if r.HasField('history')]
    metrics = {r.metric.name or r.metric.glob_name: r.metric for r in records if r.HasField('metric')}
    return dict(run=run, config=config, rows=rows, metrics=metrics, files=osp.join(osp.dirname(path), 'files'))


def _run_files(work_dir: str) -> list:
    """The run files of every training started in ``work_dir``, oldest first (log dirs are timestamps)."""
    return sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'wandb', 'offline-run-*', 'run-*.wandb')))


def _train(world: str, work_dir: str, variant: str, max_iters: int = ITERS, resume: bool = False) -> Runner:
    """A tiny DetailCLIP ablation variant trained with W&B on, as ``tools/train.py --wandb`` sets it up."""
    cfg = tiny_config(world, work_dir, ABLATION.format(variant), max_iters=max_iters, batch_size=BATCH)
    cfg.model = shrink_model(cfg.model)
    cfg.model.objectives.mae.patch_size = cfg.model.image_encoder.patch_size
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.resume = resume
    enable_wandb(cfg, 'detailclip-tests')
    runner = Runner.from_cfg(cfg)
    runner.train()
    wandb.teardown()  # wandb-core finishes writing the run file after finish() returns; this waits for it
    return runner


def _loss_rows(run: dict) -> list:
    return [row for row in run['rows'] if 'loss' in row]


@pytest.mark.slow
def test_ablation_runs_read_back_and_resume_continues_the_run(tiny_world, tmp_path, monkeypatch):
    monkeypatch.setenv('WANDB_MODE', 'offline')
    runs = {}
    for ratio in ('0.25', '0.75'):
        runner = _train(tiny_world, str(tmp_path / f'mask-ratio-{ratio}'), f'mask-ratio-{ratio}')
        [path] = _run_files(runner.work_dir)
        runs[ratio] = run = _read_run(path)
        assert run['run'].run_group == 'detailclip-ablations'
        assert run['run'].display_name == f'mask-ratio-{ratio}'
        assert {'method:detailclip', 'masker:AttentionMask', f'mask_ratio:{ratio}', 'w_clip:1.0', 'w_mae:1.0',
                'w_ibot_cls:1.0', 'w_ibot_patch:1.0'} <= set(run['run'].tags)
        assert run['config']['model']['masker']['ratio'] == float(ratio)
        assert run['config']['train_dataloader']['batch_size'] == BATCH
        assert {'iter', 'epoch', 'samples_seen'} <= set(run['metrics']) and run['metrics']['*'].step_metric == 'iter'
        rows = _loss_rows(run)
        assert [row['iter'] for row in rows] == list(range(1, ITERS + 1))
        for row in rows:
            assert row['samples_seen'] == row['iter'] * BATCH
            assert row['epoch'] == pytest.approx(row['iter'] / len(runner.train_dataloader))
        # the mask image of PretrainVisualizationHook (after the last iteration), stored as a W&B image file
        [image] = [row for row in run['rows'] if 'masks/_type' in row]
        assert image['masks/_type'] == 'image-file' and image['iter'] == ITERS
        assert osp.isfile(osp.join(run['files'], image['masks/path']))
    first_id = runs['0.25']['run'].run_id
    assert first_id != runs['0.75']['run'].run_id
    meta = torch.load(tmp_path / 'mask-ratio-0.25' / f'iter_{ITERS}.pth', weights_only=True)['meta']
    assert meta['wandb_run_id'] == first_id

    runner = _train(tiny_world, str(tmp_path / 'mask-ratio-0.25'), 'mask-ratio-0.25', 2 * ITERS, resume=True)
    first, resumed = _run_files(runner.work_dir)
    resumed = _read_run(resumed)
    assert resumed['run'].run_id == first_id
    iters = [row['iter'] for row in _loss_rows(runs['0.25']) + _loss_rows(resumed)]
    assert iters == list(range(1, 2 * ITERS + 1))
    assert [row['samples_seen'] for row in _loss_rows(resumed)] == [i * BATCH for i in range(ITERS + 1, 2 * ITERS + 1)]


def test_group_and_tags_follow_the_config():
    random_mask = Config.fromfile(ABLATION.format('random-mask'))
    assert run_group(random_mask) == 'detailclip-ablations'
    assert {'masker:RandomMask', 'mask_ratio:0.5'} <= set(run_tags(random_mask))
    assert 'w_clip:0.0' in run_tags(Config.fromfile(ABLATION.format('no-clip')))
    slip = Config.fromfile(osp.join(ROOT, 'configs/slip/slip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py'))
    assert run_group(slip) == 'slip'
    assert 'method:slip' in run_tags(slip) and not any(tag.startswith('masker:') for tag in run_tags(slip))
    slip.wandb_group = 'my-sweep'
    assert run_group(slip) == 'my-sweep'


def test_tags_tell_the_mask_ratio_semantics_apart():
    """DetailCLIP's base recipe (the reference's keep_plus_one count) and the mask-ratio 0.5 ablation (the removed
    fraction) share ``mask_ratio:0.5``; the semantics tell them apart."""
    base = set(run_tags(Config.fromfile(osp.join(
        ROOT, 'configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py'))))
    ablation = set(run_tags(Config.fromfile(ABLATION.format('mask-ratio-0.5'))))
    assert {'mask_ratio:0.5', 'ratio_semantics:keep_plus_one', 'masker.block_size:2'} <= base
    assert {'mask_ratio:0.5', 'ratio_semantics:remove'} <= ablation and 'ratio_semantics:keep_plus_one' not in ablation
    random_mask = run_tags(Config.fromfile(ABLATION.format('random-mask')))  # RandomMask's ratio is the removed one
    assert 'mask_ratio:0.5' in random_mask and not any(tag.startswith('ratio_semantics:') for tag in random_mask)


@pytest.mark.parametrize('path', SWEEPS, ids=osp.basename)
def test_every_point_of_a_shipped_sweep_has_its_own_tags(path):
    """What a sweep varies (masker type, keep, block size, ratio, loss weights) shows in the tags."""
    spec = sweep.load_sweep(path)
    config, _ = sweep.config_and_args(spec)
    tags = set()
    for point in sweep.expand(spec):
        cfg = Config.fromfile(osp.join(ROOT, config))
        cfg.merge_from_dict(point)
        tags.add(frozenset(run_tags(cfg)))
    assert len(tags) == len(sweep.expand(spec)) > 1


def test_wandb_flag_adds_the_backend_and_hook(tmp_path):
    from tools import train as train_tool
    config = ABLATION.format('mask-ratio-0.5')
    plain = train_tool.build_config(train_tool.parse_args([config, '--work-dir', str(tmp_path)]))
    assert 'wandb' not in plain.default_hooks
    assert all('Wandb' not in backend['type'] for backend in plain.visualizer.vis_backends)
    cfg = train_tool.build_config(train_tool.parse_args([config, '--wandb', 'proj', '--work-dir', str(tmp_path)]))
    assert cfg.default_hooks.wandb.type == 'WandbRunHook'
    assert cfg.visualizer.vis_backends[-1] == dict(type='ResumableWandbVisBackend', init_kwargs=dict(project='proj'))
    default = train_tool.parse_args([config, '--wandb'])
    assert default.wandb == 'detailclip'
