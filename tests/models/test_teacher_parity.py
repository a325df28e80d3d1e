"""The EMA teacher's reference-parity options: text-tower parts shared with the student (docs/methods.md Q-D13: A-CLIP's
and DetailCLIP's teacher text tower runs EMA blocks and projection on the student's own token/positional embeddings and
ln_final), and a copy that follows the student's re-initialisation (timm 0.5's cls_token init)."""
import copy
import io

import pytest
import torch

from detailclip.models.encoders import CLIPTextTransformer
from detailclip.registry import MODELS

TEXT = dict(context_length=16, vocab_size=64, width=32, layers=2, heads=2)
SHARED = ['text_encoder.token_embedding', 'text_encoder.positional_embedding', 'text_encoder.ln_final']
SHARED_KEYS = {'token_embedding.weight', 'positional_embedding', 'ln_final.weight', 'ln_final.bias'}


def build(shared=SHARED, seed=0, **encoder):
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        type='ImageTextPretrainer', embed_dim=16, objectives=dict(clip=dict(type='CLIPObjective')),
        image_encoder=dict(type='VisionTransformer', img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2,
                           **encoder),
        text_encoder=dict(type='CLIPTextTransformer', **TEXT),
        teacher=dict(modules=['image_encoder', 'image_projection', 'text_encoder', 'text_projection'], shared=shared)))
    model.init_weights()
    return model


def tokens(b=4):
    """(b, 16) ids: SOT, one word, EOT (the highest id), padding."""
    text = torch.zeros(b, 16, dtype=torch.long)
    text[:, 0], text[:, 1], text[:, 2] = 62, torch.arange(b) + 1, 63
    return text


def train_step(model, momentum):
    """One SGD step of the student (CLIP loss), then the EMA update."""
    model.zero_grad()
    batch = dict(views=[torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))], text=tokens())
    losses = model.loss(batch)
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.update_teacher(momentum)


def hybrid_text(model) -> CLIPTextTransformer:
    """A plain text tower holding the teacher's blocks and the student's embeddings and ln_final."""
    hybrid = CLIPTextTransformer(**TEXT)
    student = model.text_encoder.state_dict()
    state = dict(model.teacher.copy_of('text_encoder').state_dict())
    state.update({k: student[k] for k in SHARED_KEYS})
    hybrid.load_state_dict(state, strict=True)
    return hybrid


def test_shared_parts_are_the_students_own_and_not_the_teachers():
    model = build()
    text_copy = model.teacher.copy_of('text_encoder')
    assert text_copy.token_embedding is model.text_encoder.token_embedding
    assert text_copy.positional_embedding is model.text_encoder.positional_embedding
    assert text_copy.ln_final is model.text_encoder.ln_final
    teacher = {id(p) for p in model.teacher.parameters()}
    assert not any(id(p) in teacher for p in model.text_encoder.parameters())
    assert all(p.requires_grad for p in model.text_encoder.parameters())
    keys = set(model.state_dict())
    assert not {f'teacher.copies.text_encoder.{k}' for k in SHARED_KEYS} & keys
    assert {f'text_encoder.{k}' for k in SHARED_KEYS} <= keys
    assert 'teacher.copies.text_encoder.transformer.resblocks.0.attn.in_proj_weight' in keys
    for other in (copy.deepcopy(model), model.to(torch.float64)):  # the link survives copies and conversions
        assert other.teacher.copy_of('text_encoder').positional_embedding is other.text_encoder.positional_embedding
    assert model.teacher.copy_of('text_encoder').positional_embedding.dtype == torch.float64


@pytest.mark.parametrize('shared', [SHARED, []])
def test_update_lerps_the_copies_and_shared_parts_hold_the_students_values(shared):
    model = build(shared)
    text_copy = model.teacher.copy_of('text_encoder')
    before = {k: v.clone() for k, v in text_copy.state_dict().items()}
    embedding = model.text_encoder.token_embedding.weight.detach().clone()
    train_step(model, momentum=0.75)
    student = model.text_encoder.state_dict()
    assert not torch.equal(student['token_embedding.weight'], embedding)  # the step moved the shared parts too
    assert set(text_copy.state_dict()) == set(student) - (SHARED_KEYS if shared else set())
    for key, value in text_copy.state_dict().items():
        torch.testing.assert_close(value, 0.75 * before[key] + 0.25 * student[key], rtol=0, atol=1e-6)
    used = {'token_embedding.weight': text_copy.token_embedding.weight,
            'positional_embedding': text_copy.positional_embedding,
            'ln_final.weight': text_copy.ln_final.weight, 'ln_final.bias': text_copy.ln_final.bias}
    for key, value in used.items():
        assert torch.equal(value, student[key]) == bool(shared), key


def test_teacher_text_forward_is_the_hybrid_tower():
    model = build()
    train_step(model, momentum=0.5)
    text = tokens()
    with torch.no_grad():
        expected = model.teacher.copy_of('text_projection')(hybrid_text(model)(text))
        torch.testing.assert_close(model.encode_text(text, 'teacher'), expected, rtol=0, atol=1e-6)
        assert not torch.allclose(expected, model.encode_text(text))  # the teacher's blocks differ from the student's


def test_checkpoint_round_trip_and_exact_continuation():
    model = build()
    train_step(model, momentum=0.5)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    restored = build(seed=1)
    restored.load_state_dict(torch.load(buffer), strict=True)
    assert restored.teacher.copy_of('text_encoder').token_embedding is restored.text_encoder.token_embedding
    for run in (model, restored):
        train_step(run, momentum=0.5)
    restored_state = restored.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored_state[key]), key
    with torch.no_grad():
        assert torch.equal(restored.encode_text(tokens(), 'teacher'), model.encode_text(tokens(), 'teacher'))
    with pytest.raises(RuntimeError, match='Unexpected key'):  # a whole-tower checkpoint is another model
        model.load_state_dict(build([]).state_dict(), strict=True)


@pytest.mark.parametrize('name, match', [('logit_scale', 'not inside a copied module'),
                                         ('text_encoder.nothing', 'names no parameter')])
def test_shared_entries_are_checked(name, match):
    with pytest.raises(ValueError, match=match):
        build([name])


def test_teacher_copy_follows_the_students_cls_token_init():
    model = build(cls_token_init_std=0.02)
    student, teacher = model.image_encoder.cls_token, model.teacher.copy_of('image_encoder').cls_token
    assert torch.equal(student, teacher)
    assert float(student.detach().abs().max()) > 1e-3  # trunc_normal(std 0.02), not timm's N(0, 1e-6^2)
