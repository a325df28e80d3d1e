"""Fixtures of the downstream tests: a tiny pretrainer (student + EMA teacher) and its checkpoint as MMEngine saves
it (``{"meta": {"cfg": pretty text, "iter", "epoch", "experiment_name"}, "state_dict"}``)."""
import pytest
import torch
from mmengine.registry import DefaultScope

from detailclip.registry import MODELS
from detailclip.testing import TINY_CLIP, tiny_config


@pytest.fixture(scope='module')
def tiny_pretrainer(tmp_path_factory):
    """``(model, checkpoint dict)``: a 2-block, 32-wide, patch-16 CLIP with an EMA teacher of its image encoder
    (moved away from the student, so the two networks differ) and a mask token (dropped by the export)."""
    import detailclip.models  # noqa: F401  (registers the model parts)
    cfg = tiny_config('unused', str(tmp_path_factory.mktemp('work')), TINY_CLIP)
    cfg.model.image_encoder.use_mask_token = True
    cfg.model.teacher = dict(modules=['image_encoder'])
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('detailclip'):  # an mmdet/mmseg test may have set its scope
        model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        for p in model.teacher.parameters():
            p.add_(0.01 * torch.randn_like(p))
    meta = dict(cfg=cfg.pretty_text, iter=7, epoch=0, experiment_name='clip_vit-tiny-p8_1xb128_20260101_000000')
    return model, dict(meta=meta, state_dict=model.state_dict())
