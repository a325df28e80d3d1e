"""Maskers against naive loop references: attention block masks, random masks, BEiT block masks, box mapping."""
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import crop as tv_crop

from detailclip.models.maskers import AttentionMask, BlockMask, NoMask, RandomMask
from detailclip.models.maskers.ops import (add_rectangle, attention_mask, block_mask, block_masks, cell_scores,
                                           map_scores_exact, map_scores_grid_sample, num_kept_cells, random_mask)
from detailclip.registry import MODELS


def _int_scores(batch, num_tokens, seed=0, high=50):
    """Integer-valued float scores: cell means are exact, and the small range makes ties (tie rule tested)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, high, (batch, num_tokens), generator=gen).float()


def _naive_kept_count(num_cells, ratio, semantics):
    if semantics == 'keep_plus_one':
        return min(math.floor(num_cells * ratio) + 1, num_cells)
    return num_cells - round(num_cells * ratio)


def _naive_cell_means(row, grid, block):
    """{(ci, cj): mean of the tokens in that cell} for one (N,) row."""
    gh, gw = grid
    cells = {}
    for i in range(gh):
        for j in range(gw):
            cells.setdefault((i // block, j // block), []).append(row[i * gw + j])
    return {c: sum(v) / len(v) for c, v in cells.items()}


def _naive_ranked_cells(row, grid, block, keep):
    """Cells (row-major index) from best to worst: by mean (highest first for keep='high'), ties by lower index."""
    cw = math.ceil(grid[1] / block)
    means = {ci * cw + cj: m for (ci, cj), m in _naive_cell_means(row, grid, block).items()}
    sign = -1 if keep == 'high' else 1
    return sorted(means, key=lambda c: (sign * means[c], c))


def naive_block_mask(scores, grid, ratio, block, keep, semantics):
    """Spec for grids the block divides: keep the top cells, replicate each cell's decision to its tokens."""
    gh, gw = grid
    cw = gw // block
    out = torch.ones(scores.shape, dtype=torch.bool)
    for b, row in enumerate(scores.tolist()):
        ranked = _naive_ranked_cells(row, grid, block, keep)
        kept = set(ranked[:_naive_kept_count(len(ranked), ratio, semantics)])
        for i in range(gh):
            for j in range(gw):
                out[b, i * gw + j] = (i // block) * cw + j // block not in kept
    return out


def naive_uneven_mask(scores, grid, ratio, block, keep, semantics):
    """Spec for any grid: tokens ordered by (rank of their cell, own score, index); the first
    round(kept cells * N / C) are kept."""
    gh, gw = grid
    cw = math.ceil(gw / block)
    sign = -1 if keep == 'high' else 1
    out = torch.ones(scores.shape, dtype=torch.bool)
    for b, row in enumerate(scores.tolist()):
        ranked = _naive_ranked_cells(row, grid, block, keep)
        rank = {c: r for r, c in enumerate(ranked)}
        cell = [(t // gw // block) * cw + (t % gw) // block for t in range(gh * gw)]
        order = sorted(range(gh * gw), key=lambda t: (rank[cell[t]], sign * row[t], t))
        num_keep = round(_naive_kept_count(len(ranked), ratio, semantics) * gh * gw / len(ranked))
        for t in order[:num_keep]:
            out[b, t] = False
    return out


def reference_get_att_mask(attention, ratio=0.5):
    """The A-CLIP/DetailCLIP reference masker for a 14 x 14 grid, transcribed (bilinear 7 x 7, keep int(49 r) + 1)."""
    bs = attention.shape[0]
    cells = F.interpolate(attention.reshape(bs, 1, 14, 14), (7, 7), mode='bilinear').reshape(bs, -1)
    masks = torch.ones((bs, 49), dtype=torch.bool)
    masks.scatter_(1, torch.argsort(cells, descending=True)[:, :int(49 * ratio) + 1], False)
    full = torch.zeros((bs, 14, 14), dtype=torch.bool)
    for di in (0, 1):
        for dj in (0, 1):
            full[:, di::2, dj::2] = masks.reshape(bs, 7, 7)
    return full.reshape(bs, -1)


# ---------------------------------------------------------------- attention masks


@pytest.mark.parametrize('semantics', ['keep_plus_one', 'remove'])
def test_reference_count_14x14(semantics):
    assert num_kept_cells(49, 0.5, semantics) == 25
    mask = attention_mask(torch.rand(3, 196), (14, 14), 0.5, 2, ratio_semantics=semantics)
    assert mask.sum(1).tolist() == [96] * 3 and (~mask).sum(1).tolist() == [100] * 3


def test_reference_parity_14x14():
    scores = torch.rand(16, 196, generator=torch.Generator().manual_seed(3))
    mask = attention_mask(scores, (14, 14), 0.5, 2, 'high', 'keep_plus_one')
    assert torch.equal(mask, reference_get_att_mask(scores))


@pytest.mark.parametrize('grid,block', [((14, 14), 2), ((4, 6), 2), ((6, 6), 3), ((3, 5), 1), ((2, 2), 2)])
@pytest.mark.parametrize('ratio', [0.0, 0.25, 0.5, 0.75, 1.0])
def test_attention_mask_matches_naive(grid, block, ratio):
    scores = _int_scores(3, grid[0] * grid[1])
    for keep, semantics in itertools.product(['high', 'low'], ['keep_plus_one', 'remove']):
        mask = attention_mask(scores, grid, ratio, block, keep, semantics)
        assert torch.equal(mask, naive_block_mask(scores, grid, ratio, block, keep, semantics)), (keep, semantics)
        cells = mask.reshape(3, grid[0] // block, block, grid[1] // block, block)
        assert (cells == cells[:, :, :1, :, :1]).all(), 'the mask must be constant on every cell'


def test_kept_cells_are_top_pooled_cells():
    """14 x 14, block 2: the kept cells are exactly the 25 best of the 2 x 2 means, for keep high and low."""
    scores = torch.rand(4, 196, generator=torch.Generator().manual_seed(1))
    pooled = scores.reshape(4, 7, 2, 7, 2).mean((2, 4)).reshape(4, 49)
    for keep, largest in (('high', True), ('low', False)):
        kept = ~attention_mask(scores, (14, 14), 0.5, 2, keep, 'keep_plus_one').reshape(4, 7, 2, 7, 2)[:, :, 0, :, 0]
        top = pooled.topk(25, dim=1, largest=largest).indices
        assert torch.equal(kept.reshape(4, 49), torch.zeros(4, 49, dtype=torch.bool).scatter_(1, top, True))


def test_ties_keep_lower_cell_index():
    mask = attention_mask(torch.ones(1, 16), (4, 4), 0.5, 2, 'high', 'remove')
    assert mask.reshape(4, 4)[:2].logical_not().all() and mask.reshape(4, 4)[2:].all()


@pytest.mark.parametrize('grid', [(7, 7), (5, 7), (7, 3)])
@pytest.mark.parametrize('ratio', [0.25, 0.5])
def test_uneven_grid(grid, ratio):
    """Grids the block does not divide (ViT-B/32 at 224 is 7 x 7): equal counts per row, naive token order."""
    scores = _int_scores(4, grid[0] * grid[1], seed=2)
    for keep, semantics in itertools.product(['high', 'low'], ['keep_plus_one', 'remove']):
        mask = attention_mask(scores, grid, ratio, 2, keep, semantics)
        assert torch.equal(mask, naive_uneven_mask(scores, grid, ratio, 2, keep, semantics)), (keep, semantics)
        assert len(set(mask.sum(1).tolist())) == 1


def test_one_kept_token():
    scores = torch.tensor([[0.1, 0.7, 0.3, 0.2, 0.9, 0.4, 0.0, 0.5, 0.6]])
    mask = attention_mask(scores, (3, 3), 0.0, 1, 'high', 'keep_plus_one')
    assert (~mask).nonzero()[:, 1].tolist() == [4]


@pytest.mark.parametrize('grid,block', [((14, 14), 2), ((7, 7), 2), ((5, 7), 3), ((6, 6), 3)])
def test_cell_scores_are_means(grid, block):
    scores = torch.rand(2, grid[0] * grid[1], generator=torch.Generator().manual_seed(0))
    got = cell_scores(scores, grid, block)
    for b, row in enumerate(scores.tolist()):
        for (ci, cj), mean in _naive_cell_means(row, grid, block).items():
            assert got[b, ci, cj].item() == pytest.approx(mean, rel=1e-6)


def test_cell_scores_equal_reference_bilinear_for_block_2():
    scores = torch.rand(8, 196, generator=torch.Generator().manual_seed(0))
    bilinear = F.interpolate(scores.reshape(8, 1, 14, 14), (7, 7), mode='bilinear', align_corners=False)
    torch.testing.assert_close(cell_scores(scores, (14, 14), 2), bilinear.squeeze(1))


# ---------------------------------------------------------------- box mapping


def _naive_bilinear_zero(grid_map, y, x):
    """Bilinear value of a (gh, gw) map at continuous pixel-index coordinates (y, x), zero outside."""
    gh, gw = grid_map.shape
    y0, x0 = math.floor(y), math.floor(x)
    value = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < gh and 0 <= xx < gw:
                value += wy * wx * grid_map[yy, xx].item()
    return value


def naive_grid_sample_mapping(scores, teacher_grid, student_grid, student_boxes, teacher_boxes):
    gh, gw = student_grid
    out = torch.zeros(scores.shape[0], gh * gw)
    for b in range(scores.shape[0]):
        top, left, height, width = student_boxes[b].tolist()
        t_top, t_left, t_height, t_width = teacher_boxes[b].tolist()
        grid_map = scores[b].reshape(teacher_grid)
        for i in range(gh):
            for j in range(gw):
                y = (top + (i + 0.5) * height / gh - t_top) / t_height * teacher_grid[0] - 0.5
                x = (left + (j + 0.5) * width / gw - t_left) / t_width * teacher_grid[1] - 0.5
                out[b, i * gw + j] = _naive_bilinear_zero(grid_map, y, x)
    return out


def reference_get_mask(scores, teacher_grid, student_grid, student_boxes, teacher_boxes):
    """A-CLIP's resize-crop-resize, transcribed with torchvision's zero-padding crop."""
    out = []
    for m, o_pos, e_pos in zip(scores, student_boxes.long().tolist(), teacher_boxes.long().tolist()):
        m = F.interpolate(m.reshape(1, 1, *teacher_grid), (e_pos[2], e_pos[3]), mode='bilinear')
        m = tv_crop(m, o_pos[0] - e_pos[0], o_pos[1] - e_pos[1], o_pos[2], o_pos[3])
        out.append(F.interpolate(m, student_grid, mode='bilinear').flatten())
    return torch.stack(out)


TEACHER_BOX = [10., 20., 64., 96.]
STUDENT_BOXES = [
    [10., 20., 64., 96.],    # the teacher crop itself
    [20., 40., 32., 40.],    # zoom inside
    [0., 0., 48., 60.],      # shifted, partly outside (top-left)
    [50., 90., 40., 40.],    # partly outside (bottom-right)
    [200., 300., 30., 30.],  # entirely outside
]


def _boxes():
    student = torch.tensor(STUDENT_BOXES)
    return student, torch.tensor([TEACHER_BOX] * len(student))


@pytest.mark.parametrize('teacher_grid,student_grid', [((4, 6), (4, 6)), ((4, 6), (3, 5)), ((7, 7), (4, 4))])
def test_grid_sample_mapping_matches_naive(teacher_grid, student_grid):
    student, teacher = _boxes()
    scores = torch.rand(len(student), teacher_grid[0] * teacher_grid[1], generator=torch.Generator().manual_seed(0))
    got = map_scores_grid_sample(scores, teacher_grid, student_grid, student, teacher)
    want = naive_grid_sample_mapping(scores, teacher_grid, student_grid, student, teacher)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('teacher_grid,student_grid', [((4, 6), (4, 6)), ((7, 7), (4, 4))])
def test_exact_mapping_matches_reference(teacher_grid, student_grid):
    student, teacher = _boxes()
    scores = torch.rand(len(student), teacher_grid[0] * teacher_grid[1], generator=torch.Generator().manual_seed(0))
    got = map_scores_exact(scores, teacher_grid, student_grid, student, teacher)
    assert torch.equal(got, reference_get_mask(scores, teacher_grid, student_grid, student, teacher))


def test_mapping_identity_when_boxes_coincide():
    scores = torch.rand(3, 24, generator=torch.Generator().manual_seed(0))
    boxes = torch.tensor([TEACHER_BOX] * 3)
    torch.testing.assert_close(map_scores_grid_sample(scores, (4, 6), (4, 6), boxes, boxes), scores)
    constant = torch.full((3, 24), 0.25)
    torch.testing.assert_close(map_scores_exact(constant, (4, 6), (4, 6), boxes, boxes), constant)
    # resize-crop-resize blurs slightly: bounded by a fraction of the neighbour differences
    assert (map_scores_exact(scores, (4, 6), (4, 6), boxes, boxes) - scores).abs().max() < 0.1


@pytest.mark.parametrize('mapper', [map_scores_exact, map_scores_grid_sample])
def test_mapping_zero_outside_teacher_crop(mapper):
    """Student tokens whose centre lies at least one teacher token outside the teacher crop get zero score."""
    student, teacher = _boxes()
    scores = torch.rand(len(student), 24, generator=torch.Generator().manual_seed(0)) + 1
    got = mapper(scores, (4, 6), (4, 6), student, teacher).reshape(-1, 4, 6)
    t_top, t_left, t_height, t_width = TEACHER_BOX
    for b, (top, left, height, width) in enumerate(STUDENT_BOXES):
        for i in range(4):
            for j in range(6):
                y, x = top + (i + 0.5) * height / 4, left + (j + 0.5) * width / 6
                outside = (y < t_top - t_height / 4 or y > t_top + t_height * 5 / 4
                           or x < t_left - t_width / 6 or x > t_left + t_width * 7 / 6)
                inside = t_top <= y <= t_top + t_height and t_left <= x <= t_left + t_width
                if outside:
                    assert got[b, i, j] == 0
                if inside:
                    assert got[b, i, j] > 0
    assert (got[4] == 0).all()


def test_exact_and_grid_sample_close_on_smooth_maps():
    student, teacher = _boxes()
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 14), torch.linspace(0, 1, 14), indexing='ij')
    smooth = (1 + torch.sin(2 * ys + 1) * torch.cos(3 * xs)).flatten().expand(4, -1)
    exact = map_scores_exact(smooth, (14, 14), (14, 14), student[:4], teacher[:4])
    sampled = map_scores_grid_sample(smooth, (14, 14), (14, 14), student[:4], teacher[:4])
    # inside the teacher crop both are the bilinear surface, up to the exact mode's double resampling
    torch.testing.assert_close(exact[:2], sampled[:2], rtol=0, atol=0.01)
    # they differ at the teacher crop's border: grid_sample fades to zero over a teacher token, exact over a pixel
    assert (exact[2:] - sampled[2:]).abs().mean() < 0.1


# ---------------------------------------------------------------- maskers on a context


def _context(batch=2, sizes=((32, 48), (32, 48)), teacher_sizes=None, patch=8, seed=0):
    """Hand-built context: student views, grids, teacher CLS attention per teacher view, boxes."""
    gen = torch.Generator().manual_seed(seed)
    teacher_sizes = teacher_sizes or sizes
    views = [torch.zeros(batch, 3, *s) for s in sizes]
    teacher_views = [torch.zeros(batch, 3, *s) for s in teacher_sizes]
    cls_attn = [torch.rand(batch, (h // patch) * (w // patch), generator=gen) for h, w in teacher_sizes]
    return dict(views=views, teacher_views=teacher_views, grid_sizes=[(h // patch, w // patch) for h, w in sizes],
                teacher=dict(cls_attn=cls_attn), boxes=None, training=True)


def test_attention_masker_same_view_and_apply_to():
    context = _context(sizes=((32, 48), (32, 32)))
    masks = AttentionMask(ratio=0.5, ratio_semantics='keep_plus_one', apply_to=[1])(context)
    assert masks[0] is None
    want = naive_block_mask(context['teacher']['cls_attn'][1], (4, 4), 0.5, 2, 'high', 'keep_plus_one')
    assert torch.equal(masks[1], want)
    both = AttentionMask(ratio=0.5)(context)
    assert torch.equal(both[0], naive_block_mask(context['teacher']['cls_attn'][0], (4, 6), 0.5, 2, 'high', 'remove'))


@pytest.mark.parametrize('box_mapping', ['exact', 'grid_sample'])
def test_attention_masker_teacher_view_with_boxes(box_mapping):
    """A-CLIP: two student crops (32 x 48 px, patch 8) masked by one enclosing teacher crop (48 x 48 px)."""
    context = _context(sizes=((32, 48), (32, 48)), teacher_sizes=((48, 48),))
    context['boxes'] = torch.tensor([[[0., 0., 40., 60.], [30., 20., 50., 50.], [0., 0., 100., 90.]],
                                     [[10., 10., 30., 30.], [0., 0., 64., 64.], [0., 0., 64., 64.]]])
    masker = AttentionMask(ratio=0.5, box_mapping=box_mapping, teacher_view=0)
    masks = masker(context)
    mapper = dict(exact=map_scores_exact, grid_sample=map_scores_grid_sample)[box_mapping]
    for v in (0, 1):
        scores = mapper(context['teacher']['cls_attn'][0], (6, 6), (4, 6), context['boxes'][:, v],
                        context['boxes'][:, 2])
        assert torch.equal(masks[v], naive_block_mask(scores, (4, 6), 0.5, 2, 'high', 'remove'))
    assert masker.needs_teacher and masker.mode == 'remove'


def test_attention_masker_errors():
    context = _context(sizes=((32, 48),), teacher_sizes=((48, 48),))
    with pytest.raises(ValueError, match='box_mapping'):
        AttentionMask(teacher_view=0)(context)
    with pytest.raises(ValueError, match='boxes'):
        AttentionMask(teacher_view=0, box_mapping='exact')(context)
    for kwargs in (dict(keep='top'), dict(mode='drop'), dict(box_mapping='nearest'), dict(ratio_semantics='keep'),
                   dict(ratio=1.5)):
        with pytest.raises(ValueError):
            AttentionMask(**kwargs)


def test_attmask_is_attention_mask_keep_low_replace():
    context = _context()
    attmask = MODELS.build(dict(type='AttMask', ratio=0.4, block_size=1))
    plain = AttentionMask(ratio=0.4, block_size=1, keep='low', mode='replace')
    assert attmask.mode == 'replace' and attmask.needs_teacher
    for got, want in zip(attmask(context), plain(context)):
        assert torch.equal(got, want)
    scores, mask = context['teacher']['cls_attn'][0], attmask(context)[0]
    for b in range(scores.shape[0]):
        assert mask[b].sum() == 10 and scores[b][mask[b]].min() > scores[b][~mask[b]].max(), 'hide the most attended'


@pytest.mark.parametrize('masker', [
    dict(type='AttentionMask', ratio=0.5), dict(type='AttentionMask', ratio=0.3, ratio_semantics='keep_plus_one'),
    dict(type='AttentionMask', ratio=0.6, block_size=3), dict(type='AttMask', ratio=0.4, block_size=1),
    dict(type='RandomMask', ratio=0.75), dict(type='RandomMask', ratio=0.9)])
def test_num_masked_is_every_rows_count(masker):
    """The count maskers report without reading their masks (grids the block divides and grids it does not)."""
    context = _context(batch=3, sizes=((32, 48), (40, 56), (24, 24)))
    masker = MODELS.build(masker)
    for view, mask in enumerate(masker(context)):
        assert mask.sum(1).tolist() == [masker.num_masked(context, view)] * 3, view


def test_variable_count_maskers_report_no_count():
    context = _context(batch=3)
    assert BlockMask().num_masked(context, 0) is None and NoMask().num_masked(context, 0) is None


# ---------------------------------------------------------------- random masks


@pytest.mark.parametrize('num_tokens', [1, 10, 196])
@pytest.mark.parametrize('ratio', [0.0, 0.5, 0.75, 0.9])
def test_random_mask_keeps_lowest_noise(num_tokens, ratio):
    mask = random_mask(3, num_tokens, ratio, generator=torch.Generator().manual_seed(7))
    noise = torch.rand(3, num_tokens, generator=torch.Generator().manual_seed(7))
    num_keep = math.floor(round(num_tokens * (1 - ratio), 9))
    for b in range(3):
        lowest = sorted(range(num_tokens), key=lambda t: noise[b, t].item())[:num_keep]
        assert set((~mask[b]).nonzero().flatten().tolist()) == set(lowest)


def test_random_masker_forward():
    context = _context(batch=3, sizes=((32, 48), (16, 16)))
    masks = MODELS.build(dict(type='RandomMask', ratio=0.75, apply_to=[0]))(context)
    assert masks[1] is None and masks[0].dtype == torch.bool
    assert masks[0].sum(1).tolist() == [24 - 6] * 3
    assert NoMask()(context) == [None, None]
    with pytest.raises(ValueError):
        RandomMask(ratio=1.0)


# ---------------------------------------------------------------- block masks


def test_add_rectangle_is_one_rectangle():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = np.zeros((14, 14), dtype=bool)
        added = add_rectangle(mask, 60, 16, (math.log(0.3), math.log(1 / 0.3)), rng)
        rows, cols = np.nonzero(mask)
        assert added == mask.sum() and 0 < added <= 60
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert height * width == added, 'the masked tokens must fill their bounding box'
        assert (height - 0.5) / (width + 0.5) <= 1 / 0.3 and (height + 0.5) / (width - 0.5) >= 0.3
        assert height < 14 and width < 14


@pytest.mark.parametrize('grid', [(14, 14), (7, 7), (4, 6)])
@pytest.mark.parametrize('num_masked', [0, 1, 10, 20])
def test_block_mask_count_never_exceeds_target(grid, num_masked):
    rng = np.random.default_rng(0)
    target = min(num_masked, grid[0] * grid[1] // 2)
    for _ in range(20):
        count = block_mask(grid, target, rng).sum()
        assert count <= target
        if target >= (min(grid) // 3) ** 2:  # smaller targets than the smallest rectangle may stay unmet
            assert count >= 0.7 * target


def test_block_masks_ratio_bounds_and_probability():
    masks = block_masks(300, (14, 14), ratio=(0.1, 0.5), mask_prob=0.5, generator=torch.Generator().manual_seed(0))
    counts = masks.sum(1)
    assert masks.shape == (300, 196) and masks.dtype == torch.bool
    assert counts.max() <= int(0.5 * 196)
    masked = counts[counts > 0]
    assert 0.4 < len(masked) / 300 < 0.6
    assert masked.min() >= 0.1 * 196 * 0.7 and len(set(counts.tolist())) > 10


def test_block_masker_reproducible_under_seed():
    context = _context(batch=4, sizes=((112, 112), (112, 112), (48, 48)), patch=8)
    masker = BlockMask(mask_prob=1.0, apply_to=[0, 1])
    torch.manual_seed(0)
    first = masker(context)
    torch.manual_seed(0)
    second = masker(context)
    assert masker.mode == 'replace' and first[2] is None
    assert all(torch.equal(a, b) for a, b in zip(first[:2], second[:2]))
    assert not torch.equal(first[0], first[1])
    assert (first[0].sum(1) > 0).all() and first[0].shape == (4, 196)
