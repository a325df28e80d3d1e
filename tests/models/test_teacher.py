"""The EMA teacher: a frozen copy that moves by exactly the scheduled momentum, only when the hook says so."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub

from detailclip.engine.hooks import EMATeacherHook, cosine_momentum
from detailclip.registry import MODELS

ENCODER = dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
TEXT = dict(type='CLIPTextTransformer', context_length=16, vocab_size=64, width=32, layers=1, heads=2)


def build(teacher=dict(modules=['image_encoder', 'image_projection'])):
    model = MODELS.build(dict(type='ImageTextPretrainer', image_encoder=ENCODER, text_encoder=TEXT, embed_dim=16,
                              objectives=dict(clip=dict(type='CLIPObjective')), teacher=teacher))
    model.init_weights()
    return model


def batch(b=2):
    text = torch.zeros(b, 16, dtype=torch.long)
    text[:, 0], text[:, 1], text[:, 2] = 62, torch.arange(b) + 1, 63
    return dict(views=[torch.randn(b, 3, 32, 32)], text=text)


def pairs(model):
    for path in model.teacher.paths:
        yield from zip(model.teacher.copy_of(path).parameters(), model.get_submodule(path).parameters())


def test_teacher_is_a_frozen_eval_copy():
    model = build()
    model.train()
    for t, s in pairs(model):
        assert torch.equal(t, s) and not t.requires_grad
    assert not model.teacher.training and not model.teacher.copy_of('image_encoder').training


def test_training_step_does_not_move_the_teacher():
    model = build()
    before = [t.clone() for t, _ in pairs(model)]
    losses = model.loss(batch())
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    for (t, s), t0 in zip(pairs(model), before):
        assert torch.equal(t, t0) and t.grad is None
    assert any(not torch.equal(t, s) for t, s in pairs(model))  # the student did move


@pytest.mark.parametrize('momentum', [0.0, 0.5, 0.996])
def test_update_moves_by_exactly_the_momentum(momentum):
    model = build()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    expected = [momentum * t + (1 - momentum) * s for t, s in pairs(model)]
    model.update_teacher(momentum)
    for (t, _), e in zip(pairs(model), expected):
        torch.testing.assert_close(t, e, rtol=0, atol=1e-6)


def test_hook_uses_the_cosine_schedule():
    model = build()
    with torch.no_grad():
        for p in model.image_encoder.parameters():
            p.add_(1.0)
    t0 = model.teacher.copy_of('image_encoder').cls_token.clone()
    s = model.image_encoder.cls_token.detach().clone()
    hub = MessageHub.get_instance('test_ema_hook')
    runner = SimpleNamespace(model=model, iter=4, max_iters=10, message_hub=hub)
    EMATeacherHook(momentum=0.9).after_train_iter(runner, batch_idx=4)
    m = 1 - (1 - 0.9) * (1 + math.cos(math.pi * 5 / 10)) / 2
    torch.testing.assert_close(model.teacher.copy_of('image_encoder').cls_token, m * t0 + (1 - m) * s)
    assert hub.get_scalar('train/ema_momentum').current() == pytest.approx(m)


def test_cosine_momentum_endpoints():
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)


def test_objective_needing_a_teacher_without_one_is_a_clear_error():
    from detailclip.models.objectives import Objective

    @MODELS.register_module(force=True)
    class NeedsTeacher(Objective):
        needs_teacher = True

    with pytest.raises(ValueError, match='needs the EMA teacher'):
        MODELS.build(dict(type='ImageTextPretrainer', image_encoder=ENCODER,
                          objectives=dict(x=dict(type='NeedsTeacher'))))
    with pytest.raises(RuntimeError, match='without an EMA teacher'):
        build(teacher=None).update_teacher(0.9)


def test_half_life_sets_the_base_momentum_from_the_epoch_length():
    """half_life_epochs=0.5 over 40-iteration epochs: m ** 20 = 1/2 at the first step, whatever momentum says."""
    hook = EMATeacherHook(momentum=0.996, half_life_epochs=0.5)
    hook.before_train(SimpleNamespace(train_dataloader=range(40)))
    assert hook.momentum ** 20 == pytest.approx(0.5)
    assert hook.momentum_at(0, 100) == pytest.approx(hook.momentum)
    with pytest.raises(ValueError, match='half_life_epochs'):
        EMATeacherHook(half_life_epochs=0)
