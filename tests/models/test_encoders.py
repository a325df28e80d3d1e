"""Numeric tests of the ViT and CLIP text encoders against plain reference computations, timm and open_clip."""
import pytest
import timm
import torch
from open_clip.transformer import QuickGELU as OpenClipQuickGELU
from open_clip.transformer import TextTransformer
from torch import nn

from detailclip.models.encoders import CLIPTextTransformer, VisionTransformer
from detailclip.models.encoders.vit import CLSAttention, CLSAttentionBlock, set_attn_impl
from detailclip.models.maskers.ops import take_rows
from detailclip.registry import MODELS

TINY = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.)


def tiny_vit(**kwargs):
    torch.manual_seed(0)
    return VisionTransformer(**dict(TINY, **kwargs)).eval()


def images(batch=2, size=(32, 32)):
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(1))


def mask_with_counts(counts, num_patches=16, seed=0):
    """Bool (B, N) mask removing ``counts[b]`` random positions in row b."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(counts), num_patches, dtype=torch.bool)
    for row, count in enumerate(counts):
        mask[row, torch.randperm(num_patches, generator=gen)[:count]] = True
    return mask


def reference_encoder(model, x, remove_mask=None):
    """Plain forward: embed, gather kept tokens row by row, run blocks, and average naive full attention maps."""
    tokens = model.patch_embed(x) + model.pos_embed[:, 1:]
    if remove_mask is not None:
        tokens = torch.stack([row[~keep_out] for row, keep_out in zip(tokens, remove_mask)])
    cls = (model.cls_token + model.pos_embed[:, :1]).expand(len(tokens), -1, -1)
    tokens = torch.cat([cls, tokens], dim=1)
    maps = []
    for blk in model.blocks:
        maps.append(naive_attention(blk.attn, blk.norm1(tokens)))
        tokens = tokens + blk.attn(blk.norm1(tokens))
        tokens = tokens + blk.mlp(blk.norm2(tokens))
    cls_attn = torch.stack(maps).mean(dim=(0, 2))[:, 0, 1:]
    return model.norm(tokens), cls_attn


def naive_attention(attn, x):
    """Full (B, heads, T, T) softmax attention from timm's qkv weights."""
    B, T, C = x.shape
    q, k, _ = attn.qkv(x).reshape(B, T, 3, attn.num_heads, C // attn.num_heads).permute(2, 0, 3, 1, 4)
    return ((q @ k.transpose(-2, -1)) * attn.scale).softmax(dim=-1)


@torch.no_grad()
def test_shapes_and_registry():
    model = MODELS.build(dict(type='VisionTransformer', **TINY)).eval()
    out = model.forward_encoder(images(), return_cls_attn=True)
    assert out['tokens'].shape == (2, 17, 32) and out['cls_attn'].shape == (2, 16) and out['ids_keep'] is None
    assert model(images()).shape == (2, 32)
    assert model.grid_size == (4, 4) and model.num_patches == 16


@pytest.mark.parametrize('img_size, patch_size, match', [
    (65, 8, r'image size 65 is not divisible by patch size 8: use a multiple of 8 \(e\.g\. 64\)'),
    ((32, 50), 8, r'image size \(32, 50\) is not divisible by patch size 8: use a multiple of 8 \(e\.g\. \(32, 48\)\)'),
])
def test_non_divisible_size_raises(img_size, patch_size, match):
    with pytest.raises(ValueError, match=match):
        VisionTransformer(**dict(TINY, img_size=img_size, patch_size=patch_size))


@torch.no_grad()
def test_rectangular_size():
    model = tiny_vit(img_size=(32, 48))
    assert model.grid_size == (4, 6)
    assert model.forward_encoder(images(size=(32, 48)))['tokens'].shape == (2, 25, 32)


@torch.no_grad()
@pytest.mark.parametrize('counts', [(0, 0), (7, 7), (15, 15)])
def test_remove_matches_manual_gather(counts):
    model, x = tiny_vit(), images()
    mask = mask_with_counts(counts)
    out = model.forward_encoder(x, remove_mask=mask, return_cls_attn=True)
    expected_ids = torch.stack([torch.nonzero(~row).squeeze(1) for row in mask])
    torch.testing.assert_close(out['ids_keep'], expected_ids)
    assert out['ids_keep'].dtype == torch.long
    tokens, cls_attn = reference_encoder(model, x, mask)
    torch.testing.assert_close(out['tokens'], tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out['cls_attn'], cls_attn, atol=1e-5, rtol=1e-5)


def test_remove_uneven_counts_raise():
    with pytest.raises(ValueError, match='same number'):
        tiny_vit().forward_encoder(images(), remove_mask=mask_with_counts((3, 4)))


@torch.no_grad()
def test_cls_attn_matches_naive_reference_unmasked():
    model, x = tiny_vit(), images()
    out = model.forward_encoder(x, return_cls_attn=True)
    tokens, cls_attn = reference_encoder(model, x)
    torch.testing.assert_close(out['cls_attn'], cls_attn, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out['tokens'], tokens, atol=1e-5, rtol=1e-5)
    assert (out['cls_attn'].sum(dim=1) < 1).all()


@torch.no_grad()
def test_replace_matches_manual_substitution():
    model, x = tiny_vit(use_mask_token=True), images()
    model.mask_token.normal_()
    mask = mask_with_counts((5, 9))
    out = model.forward_encoder(x, replace_mask=mask)
    patches = model.patch_embed(x)
    patches[mask] = model.mask_token[0, 0]
    patches = patches + model.pos_embed[:, 1:]
    cls = (model.cls_token + model.pos_embed[:, :1]).expand(2, -1, -1)
    expected = model.norm(model.blocks(torch.cat([cls, patches], dim=1)))
    torch.testing.assert_close(out['tokens'], expected, atol=1e-5, rtol=1e-5)


def test_replace_without_mask_token_raises():
    with pytest.raises(ValueError, match='use_mask_token=True'):
        tiny_vit().forward_encoder(images(), replace_mask=mask_with_counts((1, 1)))


@pytest.mark.parametrize('attn_impl', ['sdpa', 'manual'])
@pytest.mark.parametrize('autocast', [False, True])
def test_block_at_rows_matches_full_block(attn_impl, autocast):
    """``rows``: the block's outputs and gradients at those rows only equal the full block's, in both attention ways
    and under bf16 autocast (matmul attention backward)."""
    torch.manual_seed(0)
    block = CLSAttentionBlock(16, 2, 2., qkv_bias=True, attn_layer=CLSAttention)
    set_attn_impl(block, attn_impl)
    x = torch.randn(2, 7, 16, requires_grad=True)
    rows = torch.tensor([[1, 3, 4], [0, 2, 6]])
    grad_out = torch.randn(2, 3, 16)
    results = []
    for at_rows in (False, True):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            out = block(x, rows=rows) if at_rows else take_rows(block(x), rows)
        results.append((out, *torch.autograd.grad(out, [x, block.attn.qkv.weight, block.mlp.fc1.weight], grad_out)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, **({'atol': 2e-2, 'rtol': 2e-2} if autocast else {}))
    with pytest.raises(NotImplementedError, match='rows'):
        block(x, rows=rows, return_cls_attn=True)


@pytest.mark.parametrize('stem, frozen', [
    ('patch', {'patch_embed.proj.weight', 'patch_embed.proj.bias'}),
    ('conv', {'patch_embed.proj.4.weight', 'patch_embed.proj.4.bias'})])
def test_freeze_patch_embed_freezes_the_linear_projection_only(stem, frozen):
    """Q-D6 freezes the linear patch projection: all of a patchify stem, the last 1x1 layer of a conv stem."""
    model = tiny_vit(freeze_patch_embed=True, stem=stem, patch_size=4)
    assert {name for name, p in model.named_parameters() if not p.requires_grad} == frozen
    assert model.patch_projection() is model.get_submodule(min(frozen).rsplit('.', 1)[0])


def test_freeze_patch_embed_stem_freezes_the_whole_stem():
    model = tiny_vit(freeze_patch_embed='stem', stem='conv', patch_size=4)
    assert {name for name, p in model.named_parameters() if not p.requires_grad} == {
        name for name, _ in model.named_parameters() if name.startswith('patch_embed.')}
    with pytest.raises(ValueError, match='freeze_patch_embed'):
        tiny_vit(freeze_patch_embed='proj')


@pytest.mark.parametrize('return_cls_attn', [False, True])
def test_grad_checkpointing_is_exact(return_cls_attn):
    x, mask = images(), mask_with_counts((6, 6))
    results = []
    for enable in (False, True):
        model = tiny_vit().train()
        model.set_grad_checkpointing(enable)
        out = model.forward_encoder(x, remove_mask=mask, return_cls_attn=return_cls_attn)
        loss = out['tokens'].square().sum() + (out['cls_attn'].sum() if return_cls_attn else 0)
        loss.backward()
        results.append((out['tokens'].detach(), {n: p.grad for n, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


@torch.no_grad()
def test_timm_surface_and_state_dict_parity():
    ref = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0, img_size=32, patch_size=8,
                            embed_dim=32, depth=2, num_heads=4, mlp_ratio=2.).eval()
    model = tiny_vit()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = images()
    torch.testing.assert_close(model(x), ref(x))
    torch.testing.assert_close(model.forward_encoder(x)['tokens'], ref.forward_features(x))
    final, inter = model.forward_intermediates(x, indices=2)
    assert final.shape == (2, 17, 32) and [t.shape for t in inter] == [(2, 32, 4, 4)] * 2
    assert {'pos_embed', 'cls_token', 'mask_token'} <= model.no_weight_decay()
    assert 'mask_token' in model.group_matcher()['stem']


def test_mask_token_is_optional_in_state_dict():
    assert 'mask_token' not in tiny_vit().state_dict()
    assert tiny_vit(use_mask_token=True).state_dict()['mask_token'].shape == (1, 1, 32)


TEXT = dict(context_length=12, vocab_size=64, width=32, layers=2, heads=4)


def text_tokens(batch=3, seed=0):
    """Random ids < EOT, an EOT (vocab - 1) at a random position, zero padding after it."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, TEXT['vocab_size'] - 1, (batch, TEXT['context_length']), generator=gen)
    eot = torch.randint(1, TEXT['context_length'] - 1, (batch,), generator=gen)
    for row, pos in enumerate(eot.tolist()):
        tokens[row, pos], tokens[row, pos + 1:] = TEXT['vocab_size'] - 1, 0
    return tokens, eot


def tiny_text():
    torch.manual_seed(0)
    return MODELS.build(dict(type='CLIPTextTransformer', **TEXT)).eval()


@torch.no_grad()
def test_text_matches_open_clip():
    ref = TextTransformer(**TEXT, output_dim=None, act_layer=OpenClipQuickGELU).eval()
    model = tiny_text()
    model.load_state_dict(ref.state_dict(), strict=True)
    tokens, _ = text_tokens()
    out = model(tokens)
    assert out.shape == (3, 32)
    torch.testing.assert_close(out, ref(tokens), atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_text_pools_at_eot_and_is_causal():
    model = tiny_text()
    tokens, eot = text_tokens()
    out = model(tokens)
    full = model.ln_final(model.transformer(model.token_embedding(tokens) + model.positional_embedding))
    torch.testing.assert_close(out, full[torch.arange(3), eot])
    changed = tokens.clone()
    for row, pos in enumerate(eot.tolist()):
        changed[row, pos + 1:] = torch.randint(1, TEXT['vocab_size'] - 1, (TEXT['context_length'] - pos - 1,))
    torch.testing.assert_close(model(changed), out)


def test_text_grad_checkpointing_and_no_weight_decay():
    tokens, _ = text_tokens()
    grads = []
    for enable in (False, True):
        model = tiny_text().train()
        model.set_grad_checkpointing(enable)
        model(tokens).square().sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    torch.testing.assert_close(grads[0], grads[1])
    assert model.no_weight_decay() == {'positional_embedding'}


def test_text_without_the_padding_after_every_eot_gives_the_same_features():
    model = tiny_text()
    tokens, eot = text_tokens()
    torch.testing.assert_close(model(tokens[:, :int(eot.max()) + 1]), model(tokens))


@pytest.mark.parametrize('tokens', [
    torch.zeros(2, 13, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long), torch.zeros(12, dtype=torch.long),
    torch.zeros(2, 12)])
def test_text_bad_input_raises(tokens):
    with pytest.raises(ValueError, match=r'tokens must be a \(B, L <= 12\) torch.long tensor'):
        tiny_text()(tokens)


def test_text_init_stds():
    torch.manual_seed(0)
    model = CLIPTextTransformer(width=64, layers=4, heads=4, context_length=77, vocab_size=1000)
    block = model.transformer.resblocks[0]
    stds = [model.positional_embedding.std(), block.attn.in_proj_weight.std(), block.mlp.c_fc.weight.std(),
            block.mlp.c_proj.weight.std()]
    expected = [0.01, 64 ** -0.5, 128 ** -0.5, 64 ** -0.5 * 8 ** -0.5]
    torch.testing.assert_close(torch.stack(stds), torch.tensor(expected), rtol=0.1, atol=0)


@pytest.mark.parametrize('patch', [4, 8])
def test_conv_stem_keeps_the_patch_grid_and_trains(patch):
    vit = VisionTransformer(img_size=32, patch_size=patch, embed_dim=32, depth=1, num_heads=2, stem='conv',
                            freeze_patch_embed=False)
    convs = [m for m in vit.patch_embed.proj if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2] * (patch.bit_length() - 1) + [1]
    out = vit.forward_encoder(torch.randn(2, 3, 32, 32))['tokens']
    assert out.shape == (2, 1 + (32 // patch) ** 2, 32)
    out.sum().backward()
    assert all(p.grad is not None for p in vit.patch_embed.parameters())


def test_conv_stem_rejects_other_patch_sizes():
    with pytest.raises(ValueError, match='power-of-two'):
        VisionTransformer(img_size=36, patch_size=6, embed_dim=32, depth=1, num_heads=2, stem='conv')
    with pytest.raises(ValueError, match='unknown stem'):
        VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, stem='hybrid')


def test_cls_token_init_std_redraws_only_the_cls_token_at_every_init():
    """timm >= 0.6 draws cls_token from N(0, 1e-6^2), the references' timm 0.5 from trunc_normal(std 0.02): the option
    redraws it after timm's init, in the constructor and in the ``init_weights`` MMEngine calls, and nothing else."""
    wide = dict(embed_dim=512, depth=1, num_heads=4)
    timm_init, legacy = tiny_vit(**wide), tiny_vit(**wide, cls_token_init_std=0.02)
    assert float(timm_init.cls_token.detach().std()) < 1e-5
    assert float(legacy.cls_token.detach().std()) == pytest.approx(0.02, rel=0.15)
    others = dict(legacy.named_parameters())
    for name, param in timm_init.named_parameters():
        assert name == 'cls_token' or torch.equal(param, others[name]), name
    legacy.init_weights()
    timm_init.init_weights()
    assert float(legacy.cls_token.detach().std()) == pytest.approx(0.02, rel=0.15)
    assert float(timm_init.cls_token.detach().std()) < 1e-5
