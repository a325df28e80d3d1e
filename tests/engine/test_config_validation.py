"""Config mistakes are reported by load_config (tools/train.py, tools/test.py) before anything is built or read,
each naming the key and the fix."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook

from detailclip.testing import ROOT, TINY_CLIP
from detailclip.engine.config import (ConfigError, ConfigWarning, accepted_arguments, load_config, pipeline_views,
                                      validate_config)

DETAILCLIP = osp.join(ROOT, 'configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
IBOT = osp.join(ROOT, 'configs/ibot/ibot_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
LEAVES = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True) if '_base_' not in p)


def _error(config: str, **options) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config, options)
    return str(info.value)


@pytest.mark.parametrize('config', LEAVES, ids=lambda p: osp.relpath(p, osp.join(ROOT, 'configs')))
def test_every_config_is_valid(config):
    validate_config(Config.fromfile(config))


@pytest.mark.parametrize('key,typo,fix', [
    ('model', 'maskr', 'masker'),
    ('model.image_encoder', 'embed_dimm', 'embed_dim'),
    ('model.objectives.clip.loss', 'gather_with_gard', 'gather_with_grad'),
    ('default_hooks.logger', 'intervl', 'interval'),
])
def test_misspelled_argument_gets_a_suggestion(key, typo, fix):
    message = _error(TINY_CLIP, **{f'{key}.{typo}': 1})
    assert f"{key}.{typo}:" in message and f"did you mean '{fix}'?" in message, message


def test_misspelled_argument_in_the_pipeline():
    message = _error(DETAILCLIP, **{'train_dataloader.dataset.pipeline.1.num_repeat': 2})
    assert "train_dataloader.dataset.pipeline[1].num_repeat: MultiView has no argument 'num_repeat'; did you " \
           "mean 'num_repeats'?" in message, message


def test_misspelled_type_gets_a_suggestion():
    message = _error(TINY_CLIP, **{'model.image_encoder.type': 'VisionTransfomer'})
    assert ("model.image_encoder.type='VisionTransfomer' is not a registered model type; did you mean "
            "'VisionTransformer'?") in message, message


def test_arguments_passed_on_to_a_base_class_are_known():
    from detailclip.models.maskers import AttMask
    assert {'ratio', 'block_size', 'apply_to'} <= set(accepted_arguments(AttMask))  # AttMask(**kwargs)
    assert accepted_arguments(dict) is None  # arbitrary keyword arguments: nothing to check


@pytest.mark.parametrize('key,value,expected', [
    ('model.image_encoder.depth', '4', "model.image_encoder.depth='4': VisionTransformer expects int, got str"),
    ('model.objectives.clip.loss.gather_with_grad', 'yes',
     "gather_with_grad='yes': CLIPInfoNCELoss expects bool, got str"),
    ('model.embed_dim', 32.5, 'model.embed_dim=32.5: ImageTextPretrainer expects int, got float'),
])
def test_wrong_type_names_key_and_expected_type(key, value, expected):
    assert expected in _error(TINY_CLIP, **{key: value})


@pytest.mark.parametrize('ratio', [0, 1, 1.5, -0.25])
def test_masker_ratio_outside_unit_interval(ratio):
    message = _error(DETAILCLIP, **{'model.masker.ratio': ratio})
    assert f'model.masker.ratio={ratio!r} is outside (0, 1)' in message, message


def test_masker_ratio_range():
    message = _error(IBOT, **{'model.masker.ratio': (0.5, 0.2)})
    assert 'model.masker.ratio=[0.5, 0.2] must be a range (low, high) with 0 <= low <= high < 1' in message


def test_image_size_the_patch_does_not_divide():
    message = _error(TINY_CLIP, **{'model.image_encoder.img_size': 60})
    assert 'model.image_encoder.img_size=60 is not divisible by model.image_encoder.patch_size=8' in message


def test_view_size_the_patch_does_not_divide():
    message = _error(TINY_CLIP, **{'train_dataloader.dataset.pipeline.1.size': 60})
    assert 'pipeline makes 60x60 views that model.image_encoder.patch_size=8 does not divide' in message, message


def test_two_view_objective_with_a_one_view_pipeline():
    one_view = Config.fromfile(DETAILCLIP).train_pipeline
    message = _error(DETAILCLIP, **{'train_dataloader.dataset.pipeline': one_view})
    assert 'model.objectives.clip.views=[0, 1] needs student view 1' in message, message
    assert 'gives the student 1 view(s)' in message and 'at least 2 student views' in message


def test_teacher_view_the_pipeline_does_not_make():
    message = _error(IBOT, **{'model.objectives.ibot.teacher_views': [0, 2]})
    assert 'model.objectives.ibot.teacher_views=[0, 2] needs teacher view 2' in message, message


def test_every_problem_is_reported_at_once():
    message = _error(DETAILCLIP, **{'model.maskr': 1, 'model.masker.ratio': 2.0})
    assert message.startswith('2 problem(s) in the config') and 'maskr' in message and 'ratio' in message


def test_pipeline_views_reads_no_data():
    aclip = Config.fromfile(osp.join(ROOT, 'configs/aclip/aclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py'))
    assert pipeline_views(aclip.train_dataloader.dataset.pipeline) == ([(64, 64), (64, 64)], [(64, 64)])


def test_train_tool_fails_before_touching_data(tmp_path):
    """The mistake surfaces before the dataset would generate its missing world."""
    from tools import train as train_tool
    root = tmp_path / 'world'
    args = train_tool.parse_args([TINY_CLIP, '--work-dir', str(tmp_path / 'run'), '--cfg-options', 'model.maskr=1',
                                  f'train_dataloader.dataset.data_root={root}'])
    with pytest.raises(ConfigError, match="did you mean 'masker'"):
        train_tool.build_config(args)
    assert not root.exists() and not (tmp_path / 'run').exists()


def test_names_resolve_in_the_config_scope_whatever_the_default_scope():
    """After an mmseg Runner the default scope is mmseg, where RandomApply is mmcv's (it takes prob, not p); the
    check still resolves the config's names in its own scope (as the build does)."""
    import mmseg.datasets  # noqa: F401  (registers mmcv's and mmseg's transforms)
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        validate_config(Config.fromfile(IBOT))


def test_work_dir_precedence():
    """--work-dir, else the config's work_dir (after --cfg-options), else the caller's default, else
    work_dirs/<config name>."""
    name = osp.splitext(osp.basename(IBOT))[0]
    fallback = lambda cfg: osp.join('fallback', osp.basename(cfg.filename))  # noqa: E731
    assert load_config(IBOT).work_dir == osp.join('work_dirs', name)
    assert load_config(IBOT, default_work_dir=fallback).work_dir == osp.join('fallback', osp.basename(IBOT))
    assert load_config(IBOT, {'work_dir': 'own'}, default_work_dir=fallback).work_dir == 'own'
    assert load_config(IBOT, {'work_dir': 'own'}, work_dir='given', default_work_dir=fallback).work_dir == 'given'


# Each mistake stops tools/train.py before data is read: the data root does not exist, so a later check would fail
# on it instead.
NO_DATA = ['train_dataloader.dataset.data_root=/nonexistent/data']


@pytest.mark.parametrize('option,expected', [
    ('optim_wrapper.optimizer.lr=-0.001', 'optim_wrapper.optimizer.lr=-0.001 is negative: it must be >= 0'),
    ('optim_wrapper.optimizer.lr=abc', "optim_wrapper.optimizer.lr='abc': AdamW expects"),
    ('train_dataloader.batch_size=0', 'train_dataloader.batch_size=0: it must be a positive int'),
    ('train_dataloader.batch_szie=8', "train_dataloader.batch_szie: DataLoader has no argument 'batch_szie'; did "
                                      "you mean 'batch_size'?"),
    ('train_cfg.max_iter=3', "train_cfg.max_iter: ResumableIterBasedTrainLoop has no argument 'max_iter'; did you "
                             "mean 'max_iters'?"),
    ('default_hooks.checkpoint.intervall=2', "default_hooks.checkpoint.intervall: AtomicCheckpointHook has no "
                                             "argument 'intervall'; did you mean 'interval'?"),
    ('model.text_encoder.context_length=16', 'train_dataloader.dataset.pipeline[2].context_length=32 is longer '
                                             'than model.text_encoder.context_length=16'),
    ('model.image_encoder.type=FooBarEncoder', "model.image_encoder.type='FooBarEncoder' is not a registered model "
                                               "type; register your class with @MODELS.register_module()"),
])
def test_train_stops_before_reading_data(option, expected, tmp_path):
    from tools import train
    with pytest.raises(SystemExit) as info:
        train.main([TINY_CLIP, '--work-dir', str(tmp_path), '--cfg-options', option, *NO_DATA])
    assert expected in str(info.value), str(info.value)
    assert not any(tmp_path.iterdir()), 'nothing is written before the config is valid'


def test_checkpoint_arguments_are_those_it_passes_on():
    params = accepted_arguments(CheckpointHook)  # its **kwargs all go to Runner.save_checkpoint
    assert {'interval', 'max_keep_ckpts', 'save_optimizer'} <= set(params) and 'intervall' not in params


@pytest.mark.parametrize('option,expected', [
    ('max_iter=3', "unknown top-level key, nothing reads it; did you mean 'train_cfg.max_iters'?"),
    ('context_length=16', "'context_length' is a variable of the config file, already used when the file loaded, so "
                          "setting it changes nothing; set the keys that use it instead (.*model.text_encoder"),
])
def test_top_level_keys_nothing_reads_are_warned(option, expected):
    key, value = option.split('=')
    with pytest.warns(ConfigWarning, match=re.escape(expected).replace(r'\.\*', '.*')):
        load_config(TINY_CLIP, {key: int(value)})
