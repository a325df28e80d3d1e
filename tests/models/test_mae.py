"""Numeric tests of the MAE decoder, pixel head, pixel loss, patch ops and MAE objective against naive references."""
import numpy as np
import pytest
import torch

from detailclip.models.encoders.vit import VisionTransformer
from detailclip.models.heads.mae_decoder import MAEDecoder, PixelHead
from detailclip.models.losses.pixel_loss import PixelReconLoss
from detailclip.models.objectives.mae import MAEObjective
from detailclip.models.ops import patchify, sincos_pos_embed_2d, unpatchify
from detailclip.registry import MODELS


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def random_ids_keep(batch, num_patches, num_keep, seed=0, ordered=False):
    """(B, N_keep) distinct positions per row; ascending when ``ordered``."""
    g = gen(seed)
    ids = torch.stack([torch.randperm(num_patches, generator=g)[:num_keep] for _ in range(batch)])
    return ids.sort(dim=1).values if ordered else ids


def remove_mask(ids_keep, num_patches):
    """Bool (B, N), True where a position is not in ``ids_keep``."""
    mask = torch.ones(ids_keep.shape[0], num_patches, dtype=torch.bool)
    return mask.scatter(1, ids_keep, False)


# ----------------------------------------------------------------------------------------------- patch ops

@pytest.mark.parametrize('patch', [4, 8])
@pytest.mark.parametrize('grid', [(1, 1), (2, 2), (2, 3), (3, 1)])
@pytest.mark.parametrize('chans', [1, 3])
def test_patchify_matches_naive_and_round_trips(patch, grid, chans):
    imgs = torch.randn(2, chans, grid[0] * patch, grid[1] * patch, generator=gen())
    patches = patchify(imgs, patch)
    assert patches.shape == (2, grid[0] * grid[1], patch * patch * chans)
    for b in range(2):
        for n in range(grid[0] * grid[1]):
            r, c = divmod(n, grid[1])
            block = imgs[b, :, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]  # (C, p, p)
            # vector order (row-in-patch, column-in-patch, channel)
            expected = torch.tensor([block[ch, i, j].item() for i in range(patch) for j in range(patch)
                                     for ch in range(chans)])
            torch.testing.assert_close(patches[b, n], expected)
    torch.testing.assert_close(unpatchify(patches, patch, grid), imgs)


def test_patch_ops_reject_bad_sizes():
    with pytest.raises(ValueError, match='not divisible'):
        patchify(torch.zeros(1, 3, 10, 8), 4)
    with pytest.raises(ValueError, match='do not fit'):
        unpatchify(torch.zeros(1, 6, 48), 4, (2, 2))


def mae_sincos_reference(dim, gh, gw):
    """MAE's util/pos_embed.py get_2d_sincos_pos_embed(cls_token=True), grid reshaped as (2, 1, gh, gw)."""
    def one_d(d, pos):
        omega = np.arange(d // 2, dtype=np.float64) / (d / 2.)
        omega = 1. / 10000 ** omega
        out = np.einsum('m,d->md', pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    grid = np.stack(np.meshgrid(np.arange(gw, dtype=np.float64), np.arange(gh, dtype=np.float64)), axis=0)
    grid = grid.reshape([2, 1, gh, gw])
    emb = np.concatenate([one_d(dim // 2, grid[0]), one_d(dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, dim]), emb], axis=0)


@pytest.mark.parametrize('dim,grid', [(16, (4, 4)), (32, (14, 14)), (8, (1, 1)), (16, (3, 5)), (12, (5, 2))])
def test_sincos_matches_mae_formula(dim, grid):
    ours = sincos_pos_embed_2d(grid, dim)
    ref = torch.from_numpy(mae_sincos_reference(dim, *grid)).float()
    assert ours.dtype == torch.float32 and ours.shape == (1 + grid[0] * grid[1], dim)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sincos_pos_embed_2d(grid, dim, cls_token=False), ours[1:])


def test_sincos_rejects_width_not_multiple_of_4():
    with pytest.raises(ValueError, match='divisible by 4'):
        sincos_pos_embed_2d((2, 2), 6)


# ----------------------------------------------------------------------------------------------- decoder

def naive_decoder_depth0(decoder, tokens, ids_keep, grid):
    """Project, then build each row by a Python loop: mask token everywhere, kept tokens at their positions."""
    emb = decoder.decoder_embed(tokens)
    num = grid[0] * grid[1]
    rows = []
    for b in range(tokens.shape[0]):
        row = [decoder.mask_token[0, 0]] * num
        for j, pos in enumerate(ids_keep[b].tolist()):
            row[pos] = emb[b, 1 + j]
        rows.append(torch.stack([emb[b, 0]] + row))
    pos_table = torch.from_numpy(mae_sincos_reference(decoder.width, *grid)).float()
    return decoder.decoder_norm(torch.stack(rows) + pos_table)


@pytest.mark.parametrize('batch,grid,num_keep', [(2, (3, 4), 5), (1, (2, 2), 1), (3, (4, 2), 8), (2, (1, 3), 2)])
@pytest.mark.parametrize('ordered', [True, False])
def test_decoder_unshuffle_matches_naive_loop(batch, grid, num_keep, ordered):
    torch.manual_seed(0)
    decoder = MAEDecoder(in_dim=12, width=16, depth=0, num_heads=2)
    with torch.no_grad():  # non-trivial LN so a wrong placement cannot hide behind the norm
        decoder.decoder_norm.weight.normal_()
        decoder.decoder_norm.bias.normal_()
    num = grid[0] * grid[1]
    ids_keep = random_ids_keep(batch, num, num_keep, ordered=ordered)
    tokens = torch.randn(batch, 1 + num_keep, 12, generator=gen(1))
    out = decoder(tokens, ids_keep, grid)
    ref = naive_decoder_depth0(decoder, tokens, ids_keep, grid)
    assert out.shape == (batch, 1 + num, 16)
    torch.testing.assert_close(out, ref)

    upstream = torch.randn(out.shape, generator=gen(2))
    params = list(decoder.parameters())
    grads = torch.autograd.grad((out * upstream).sum(), params, materialize_grads=True)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), params, materialize_grads=True)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize('depth', [0, 1, 2])
@pytest.mark.parametrize('ordered', [True, False])
def test_decoder_removed_only_equals_removed_rows_of_full_decoding(depth, ordered):
    torch.manual_seed(0)
    decoder = MAEDecoder(in_dim=8, width=16, depth=depth, num_heads=2)
    ids_keep = random_ids_keep(3, 12, 5, ordered=ordered)
    tokens = torch.randn(3, 1 + 5, 8, generator=gen())
    full = decoder(tokens, ids_keep, (3, 4))
    removed = decoder(tokens, ids_keep, (3, 4), removed_only=True)
    assert removed.shape == (3, 7, 16)
    torch.testing.assert_close(removed, full[:, 1:][remove_mask(ids_keep, 12)].view(3, 7, 16))
    with pytest.raises(ValueError, match='needs ids_keep'):
        decoder(torch.randn(3, 13, 8), None, (3, 4), removed_only=True)


def test_decoder_without_ids_keep_runs_on_all_tokens():
    torch.manual_seed(0)
    decoder = MAEDecoder(in_dim=8, width=16, depth=1, num_heads=2)
    tokens = torch.randn(2, 1 + 6, 8, generator=gen())
    all_kept = torch.arange(6).expand(2, -1)
    torch.testing.assert_close(decoder(tokens, None, (2, 3)), decoder(tokens, all_kept, (2, 3)))
    with pytest.raises(ValueError, match='all 4 patch tokens'):
        decoder(tokens, None, (2, 2))


def test_decoder_cached_grid_equals_computed_and_is_not_checkpointed():
    torch.manual_seed(0)
    cached = MAEDecoder(in_dim=8, width=16, depth=1, num_heads=2, grid_size=(2, 3))
    plain = MAEDecoder(in_dim=8, width=16, depth=1, num_heads=2)
    plain.load_state_dict(cached.state_dict())
    assert not any('pos_embed' in k for k in cached.state_dict())
    assert not any(p.requires_grad and 'pos' in n for n, p in cached.named_parameters())
    tokens = torch.randn(2, 1 + 3, 8, generator=gen())
    ids_keep = random_ids_keep(2, 6, 3)
    torch.testing.assert_close(cached(tokens, ids_keep, (2, 3)), plain(tokens, ids_keep, (2, 3)))
    # another grid than the cached one still works
    assert cached(torch.randn(1, 1 + 2, 8), random_ids_keep(1, 4, 2), (2, 2)).shape == (1, 5, 16)


def test_decoder_init_and_width_check():
    torch.manual_seed(0)
    decoder = MAEDecoder(in_dim=8, width=64, depth=2, num_heads=4)
    assert torch.all(decoder.decoder_embed.bias == 0) and torch.all(decoder.decoder_blocks[0].attn.qkv.bias == 0)
    bound = (6 / (8 + 64)) ** 0.5  # xavier-uniform bound of decoder_embed
    assert decoder.decoder_embed.weight.abs().max() <= bound
    assert 0.01 < decoder.mask_token.std() < 0.04
    assert decoder.decoder_norm.eps == 1e-6 and decoder.decoder_blocks[0].norm1.eps == 1e-6
    with pytest.raises(ValueError, match='in_dim=8 but the encoder tokens have width 12'):
        decoder(torch.zeros(1, 3, 12), torch.tensor([[0, 1]]), (2, 2))


@pytest.mark.parametrize('init', ['xavier', 'default'])
def test_pixel_head_shape_and_init(init):
    torch.manual_seed(0)
    head = PixelHead(16, patch_size=4, init=init)
    assert head(torch.zeros(2, 5, 16)).shape == (2, 5, 48)
    assert torch.all(head.proj.bias == 0) == (init == 'xavier')
    with pytest.raises(ValueError, match='unknown init'):
        PixelHead(16, 4, init='normal')


# ----------------------------------------------------------------------------------------------- pixel loss

def naive_pixel_loss(pred, target, mask, norm_pix, eps=1e-6):
    total, count = 0., 0
    for b in range(pred.shape[0]):
        for n in range(pred.shape[1]):
            if not mask[b, n]:
                continue
            t = target[b, n]
            if norm_pix:
                mu = t.sum() / t.numel()
                var = ((t - mu) ** 2).sum() / (t.numel() - 1)  # unbiased
                t = (t - mu) / torch.sqrt(var + eps)
            total = total + ((pred[b, n] - t) ** 2).sum() / t.numel()
            count += 1
    return total / count


@pytest.mark.parametrize('norm_pix', [True, False])
@pytest.mark.parametrize('batch,num,dim,removed', [(2, 6, 12, 3), (1, 4, 48, 1), (3, 5, 8, 5), (1, 1, 4, 1)])
def test_pixel_loss_matches_naive(norm_pix, batch, num, dim, removed):
    pred = torch.randn(batch, num, dim, generator=gen(), requires_grad=True)
    target = 3 * torch.randn(batch, num, dim, generator=gen(1)) + 1
    mask = remove_mask(random_ids_keep(batch, num, num - removed), num)
    loss = PixelReconLoss(norm_pix=norm_pix)(pred, target, mask)
    ref = naive_pixel_loss(pred, target, mask, norm_pix)
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(torch.autograd.grad(loss, pred)[0], torch.autograd.grad(ref, pred)[0])


def test_pixel_loss_ignores_kept_positions_and_handles_empty_mask():
    loss = PixelReconLoss()
    pred, target = torch.randn(2, 4, 8, generator=gen()), torch.randn(2, 4, 8, generator=gen(1))
    mask = torch.tensor([[True, False, False, False], [False, False, True, False]])
    changed = pred.clone()
    changed[~mask] += 100.
    torch.testing.assert_close(loss(pred, target, mask), loss(changed, target, mask))
    assert loss(pred, target, torch.zeros(2, 4, dtype=torch.bool)) == 0
    with pytest.raises(ValueError, match='must be'):
        loss(pred, target[:, :3], mask)


# ----------------------------------------------------------------------------------------------- objective

ENC = dict(img_size=(16, 24), patch_size=8, embed_dim=16, depth=1, num_heads=2, mlp_ratio=2.)
DEC = dict(in_dim=16, width=24, depth=1, num_heads=4, mlp_ratio=2.)


def student_context(encoder, num_keep=(3, None), batch=2):
    """Context as the pretrainer builds it: views, masks, grid sizes, encoder tokens and kept indices."""
    grid = encoder.grid_size
    num = grid[0] * grid[1]
    views = [torch.randn(batch, 3, 16, 24, generator=gen(10 + v)) for v in range(len(num_keep))]
    masks = [None if k is None else remove_mask(random_ids_keep(batch, num, k, seed=v, ordered=True), num)
             for v, k in enumerate(num_keep)]
    outs = [encoder.forward_encoder(x, remove_mask=m) for x, m in zip(views, masks)]
    return dict(views=views, masks=masks, grid_sizes=[grid] * len(views), mask_mode='remove',
                image_tokens=[o['tokens'] for o in outs], ids_keep=[o['ids_keep'] for o in outs])


@pytest.mark.parametrize('positions', ['masked', 'all'])
@pytest.mark.parametrize('num_keep', [(3, None), (1, 4), (5, 2)])
def test_objective_fp32_backward_and_value(num_keep, positions):
    torch.manual_seed(0)
    encoder = VisionTransformer(**ENC)
    objective = MODELS.build(dict(type='MAEObjective', decoder=DEC, patch_size=8, weight=0.5,
                                  decode_positions=positions))
    context = student_context(encoder, num_keep)
    out = objective(context, {})
    assert set(out) == {'loss_pixel'} and torch.isfinite(out['loss_pixel'])
    out['loss_pixel'].backward()
    for name, param in objective.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert encoder.blocks[0].attn.qkv.weight.grad is not None

    with torch.no_grad():
        decoded = objective.decode(context)  # every position
    masked = [v for v, k in enumerate(num_keep) if k is not None]
    assert [d is not None for d in decoded] == [k is not None for k in num_keep]
    assert all(decoded[v].shape == (2, 1 + 6, 24) for v in masked)
    published = context['decoded_masked' if positions == 'masked' else 'decoded']
    assert [d is not None for d in published] == [k is not None for k in num_keep]
    for v in masked:  # at the removed positions: those rows of the full decoding, ascending
        expected = decoded[v][:, 1:][context['masks'][v]].view(2, -1, 24) if positions == 'masked' else decoded[v]
        torch.testing.assert_close(published[v].detach(), expected)
    with torch.no_grad():  # the value: weight * mean over masked views of the loss of that view alone
        per_view = [naive_pixel_loss(objective.pixel_head(decoded[v][:, 1:]), patchify(context['views'][v], 8),
                                     context['masks'][v], norm_pix=True) for v in masked]
    torch.testing.assert_close(out['loss_pixel'].detach(), 0.5 * torch.stack(per_view).mean())


def test_objective_view_selection_publish_flag_and_errors():
    torch.manual_seed(0)
    encoder = VisionTransformer(**ENC)
    context = student_context(encoder, (3, 4))
    only_second = MAEObjective(decoder=DEC, patch_size=8, views=[1], publish_decoded=False)
    only_second(context, {})
    assert 'decoded' not in context and 'decoded_masked' not in context
    with pytest.raises(ValueError, match='unknown decode_positions'):
        MAEObjective(decoder=DEC, patch_size=8, decode_positions='kept')
    with pytest.raises(ValueError, match='no masked student view'):
        MAEObjective(decoder=DEC, patch_size=8)(dict(context, masks=[None, None]), {})
    with pytest.raises(ValueError, match='patch size 8 but MAEObjective was built with patch_size=4'):
        MAEObjective(decoder=DEC, patch_size=4)(context, {})
    with pytest.raises(ValueError, match='set the decoder in_dim'):
        MAEObjective(decoder=dict(DEC, in_dim=32), patch_size=8)(context, {})


def test_objective_replace_mode_and_bf16_autocast():
    torch.manual_seed(0)
    encoder = VisionTransformer(**ENC, use_mask_token=True)
    objective = MAEObjective(decoder=DEC, patch_size=8, decode_positions='all')
    mask = remove_mask(random_ids_keep(2, 6, 2), 6)
    view = torch.randn(2, 3, 16, 24, generator=gen())
    with torch.autocast('cpu', dtype=torch.bfloat16):
        tokens = encoder.forward_encoder(view, replace_mask=mask)['tokens']
        context = dict(views=[view], masks=[mask], grid_sizes=[(2, 3)], image_tokens=[tokens], ids_keep=[None])
        with pytest.raises(ValueError, match='decode_positions="all"'):  # the removed rows need token removal
            MAEObjective(decoder=DEC, patch_size=8)(context, {})
        loss = objective(context, {})['loss_pixel']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert objective.decoder.decoder_embed.weight.grad is not None
