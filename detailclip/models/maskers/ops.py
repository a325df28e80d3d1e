"""Pure mask operations behind the maskers.

A mask is a bool (B, N) tensor over the N = gh * gw patch tokens of a view in row-major order, with the project-wide
convention **True = removed** (or replaced by the mask token), False = kept. Random draws take an optional
``torch.Generator``; without one they use torch's default RNG, so runs are reproducible under ``torch.manual_seed``.
"""
import math
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

Grid = Tuple[int, int]


def mask_from_kept(ids_keep: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(B, K) kept token indices -> (B, N) bool mask, True on the N - K others."""
    mask = torch.ones(ids_keep.shape[0], num_tokens, dtype=torch.bool, device=ids_keep.device)
    return mask.scatter_(1, ids_keep, False)


def removed_positions(ids_keep: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(B, K) kept token indices -> (B, N - K) indices of the others, ascending (the order of ``x[mask]``), without
    reading anything back to the host."""
    return sorted_positions(mask_from_kept(ids_keep, num_tokens), num_tokens - ids_keep.shape[1])


def sorted_positions(mask: torch.Tensor, count: int, value: bool = True) -> torch.Tensor:
    """(B, N) bool mask -> (B, count) long: the positions where it equals ``value``, ascending, without reading
    anything back to the host. Every row must hold exactly ``count`` such positions."""
    # A stable sort of the 0/1 key lists the positions holding ``value`` first, each group in ascending order.
    key = (mask != value).to(torch.int8)
    return torch.argsort(key, dim=1, stable=True)[:, :count]


def take_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``x[b, rows[b]]`` for every b: tokens ``(B, T, C)``, indices ``(B, Q)`` -> ``(B, Q, C)``."""
    return torch.gather(x, 1, rows.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def select_masked(x: torch.Tensor, mask: torch.Tensor, num_masked: Optional[int] = None) -> torch.Tensor:
    """``x[mask]``: the (M, C) rows of tokens ``(..., N, C)`` where the bool ``mask`` ``(..., N)`` is True, row-major.

    Boolean indexing reads the mask back to learn M (a host-device sync on a GPU). With ``num_masked``, the count
    of True entries in every row of the mask (a masker's :meth:`~detailclip.models.maskers.Masker.num_masked`), it
    is a gather instead, with no host read.
    """
    if num_masked is None:
        return x[mask]
    x, mask = x.flatten(0, mask.dim() - 2), mask.flatten(0, mask.dim() - 2)
    return take_rows(x, sorted_positions(mask, num_masked)).flatten(0, 1)


def num_random_kept(num_tokens: int, ratio: float) -> int:
    """Tokens a random mask keeps of N at removal ratio ``ratio``: floor(N (1 - ratio))."""
    # the epsilon keeps e.g. 10 * (1 - 0.9) = 0.999... from flooring to 0
    return int(num_tokens * (1 - ratio) + 1e-6)


def random_mask(batch: int, num_tokens: int, ratio: float, device: Optional[torch.device] = None,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """MAE/FLIP random masking: every row keeps its floor(N (1 - ratio)) lowest-noise tokens.

    Args:
        batch (int): B.
        num_tokens (int): N.
        ratio (float): Fraction removed.
        device (torch.device, optional): Where the noise is drawn (the generator's device).
        generator (torch.Generator, optional): Source of the (B, N) uniform noise.

    Returns:
        Tensor: (B, N) bool, True = removed; every row removes the same count.
    """
    num_keep = num_random_kept(num_tokens, ratio)
    noise = torch.rand(batch, num_tokens, device=device, generator=generator)
    return mask_from_kept(noise.argsort(dim=1)[:, :num_keep], num_tokens)


def cell_scores(scores: torch.Tensor, grid: Grid, block: int) -> torch.Tensor:
    """Mean token score of each block x block cell.

    For block 2 this equals the references' bilinear downsampling (A-CLIP/DetailCLIP); bilinear is not a mean for
    larger blocks, hence average pooling. Edge cells of a grid the block does not divide average the tokens they hold.

    Args:
        scores (Tensor): (B, N) token scores, N = gh * gw.
        grid (tuple[int, int]): (gh, gw).
        block (int): Cell side s in tokens.

    Returns:
        Tensor: (B, ch, cw) float32 with ch = ceil(gh / s), cw = ceil(gw / s).
    """
    x = scores.float().reshape(-1, 1, *grid)
    return F.avg_pool2d(x, block, ceil_mode=True).squeeze(1)


def token_cells(grid: Grid, block: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """(N,) long: the index of the cell (row-major over the ceil(gh/s) x ceil(gw/s) cells) holding each token."""
    rows = torch.arange(grid[0], device=device) // block
    cols = torch.arange(grid[1], device=device) // block
    return (rows[:, None] * math.ceil(grid[1] / block) + cols[None, :]).flatten()


def num_kept_cells(num_cells: int, ratio: float, ratio_semantics: str = 'remove') -> int:
    """How many of C cells an attention mask keeps.

    ``'keep_plus_one'`` (A-CLIP/DetailCLIP code): floor(C ratio) + 1, capped at C. ``'remove'``: C - round(C ratio)
    (Python's round, half to even). Both keep 25 of 49 cells at ratio 0.5.
    """
    if ratio_semantics == 'keep_plus_one':
        return min(int(num_cells * ratio) + 1, num_cells)
    if ratio_semantics == 'remove':
        return num_cells - round(num_cells * ratio)
    raise ValueError(f'unknown ratio_semantics {ratio_semantics!r}: use "remove" or "keep_plus_one"')


def num_attention_kept(grid: Grid, ratio: float, block: int, ratio_semantics: str = 'remove') -> int:
    """Tokens :func:`attention_mask` keeps in every row: its kept cells' share of the N tokens, rounded."""
    num_cells = math.ceil(grid[0] / block) * math.ceil(grid[1] / block)
    return round(num_kept_cells(num_cells, ratio, ratio_semantics) * grid[0] * grid[1] / num_cells)


def attention_mask(scores: torch.Tensor, grid: Grid, ratio: float, block: int = 2, keep: str = 'high',
                   ratio_semantics: str = 'remove') -> torch.Tensor:
    """Block mask keeping the cells with the highest (or lowest) mean score (A-CLIP arXiv 2212.08653).

    Cells are ranked by :func:`cell_scores` (stable order: ties go to the lower cell index) and the kept tokens are
    taken cell by cell in that order. When the block divides the grid, ``num_kept_cells * block**2`` tokens are kept,
    so the mask is constant on every cell. Otherwise round(kept cells * N / C) tokens are kept, the same in every row,
    and the last cell taken may be cut (its best-scoring tokens are kept).

    Args:
        scores (Tensor): (B, N) token scores (the teacher's CLS attention).
        grid (tuple[int, int]): (gh, gw), gh * gw = N.
        ratio (float): Masking ratio, read as ``ratio_semantics`` says (:func:`num_kept_cells`).
        block (int): Cell side in tokens.
        keep (str): ``'high'`` keeps the most attended cells, ``'low'`` the least attended.
        ratio_semantics (str): ``'remove'`` or ``'keep_plus_one'``.

    Returns:
        Tensor: (B, N) bool, True = removed; every row removes the same count.
    """
    if keep not in ('high', 'low'):
        raise ValueError(f'unknown keep {keep!r}: use "high" or "low"')
    descending = keep == 'high'
    cells = cell_scores(scores, grid, block).flatten(1)
    num_tokens, num_keep = scores.shape[1], num_attention_kept(grid, ratio, block, ratio_semantics)
    cell_order = torch.sort(cells, dim=1, descending=descending, stable=True).indices
    cell_rank = torch.argsort(cell_order, dim=1)
    token_rank = cell_rank[:, token_cells(grid, block, scores.device)]
    # order tokens by their own score first, so the stable sort by cell rank breaks ties within a cell by score
    by_score = torch.sort(scores.float(), dim=1, descending=descending, stable=True).indices
    order = by_score.gather(1, torch.sort(token_rank.gather(1, by_score), dim=1, stable=True).indices)
    return mask_from_kept(order[:, :num_keep], num_tokens)


def map_scores_exact(scores: torch.Tensor, teacher_grid: Grid, student_grid: Grid, student_boxes: torch.Tensor,
                     teacher_boxes: torch.Tensor) -> torch.Tensor:
    """The teacher's score map seen through each student crop, as A-CLIP's code computes it (one sample at a time).

    Resize the map to the teacher crop's pixel size, take the student crop's window (zero outside the teacher crop),
    resize it to the student grid; bilinear, align_corners=False, boxes rounded to whole pixels.

    Args:
        scores (Tensor): (B, N_t) scores on the teacher view, N_t = prod(teacher_grid).
        teacher_grid (tuple[int, int]): (gh_t, gw_t).
        student_grid (tuple[int, int]): (gh, gw).
        student_boxes (Tensor): (B, 4) student crops (top, left, height, width) in source pixels.
        teacher_boxes (Tensor): (B, 4) teacher crops, same layout.

    Returns:
        Tensor: (B, gh * gw) float32 scores on the student tokens.
    """
    out = []
    for score, (top, left, height, width), (t_top, t_left, t_height, t_width) in zip(
            scores.float(), student_boxes.round().long().tolist(), teacher_boxes.round().long().tolist()):
        big = F.interpolate(score.reshape(1, 1, *teacher_grid), (t_height, t_width), mode='bilinear',
                            align_corners=False)
        window = _zero_padded_window(big, top - t_top, left - t_left, height, width)
        out.append(F.interpolate(window, student_grid, mode='bilinear', align_corners=False).flatten())
    return torch.stack(out)


def _zero_padded_window(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """(..., H, W) -> (..., height, width) window at (top, left); zeros where it leaves x."""
    out = x.new_zeros(*x.shape[:-2], height, width)
    y0, y1 = max(top, 0), min(top + height, x.shape[-2])
    x0, x1 = max(left, 0), min(left + width, x.shape[-1])
    if y0 < y1 and x0 < x1:
        out[..., y0 - top:y1 - top, x0 - left:x1 - left] = x[..., y0:y1, x0:x1]
    return out


def map_scores_grid_sample(scores: torch.Tensor, teacher_grid: Grid, student_grid: Grid,
                           student_boxes: torch.Tensor, teacher_boxes: torch.Tensor) -> torch.Tensor:
    """The teacher's score map sampled at each student token centre, for the whole batch at once.

    Bilinear ``grid_sample`` (zero padding, align_corners=False) at the student token centres mapped into the
    teacher crop; close to :func:`map_scores_exact` (not equal: that one resamples twice) and exact when the crops
    coincide. Arguments and return as :func:`map_scores_exact`.
    """
    maps = scores.float().reshape(-1, 1, *teacher_grid)
    top, left, height, width = student_boxes.to(maps).unbind(-1)
    t_top, t_left, t_height, t_width = teacher_boxes.to(maps).unbind(-1)
    y = _normalised_centres(top, height, t_top, t_height, student_grid[0])
    x = _normalised_centres(left, width, t_left, t_width, student_grid[1])
    grid = torch.stack(torch.broadcast_tensors(x[:, None, :], y[:, :, None]), dim=-1)
    return F.grid_sample(maps, grid, mode='bilinear', padding_mode='zeros', align_corners=False).flatten(1)


def _normalised_centres(start: torch.Tensor, length: torch.Tensor, t_start: torch.Tensor, t_length: torch.Tensor,
                        num: int) -> torch.Tensor:
    """(B, num) centres of ``num`` tokens along a student crop (start, length: (B,)), in the teacher crop's [-1, 1]
    coordinates (-1 and 1 are its outer pixel edges, as grid_sample reads them with align_corners=False)."""
    fractions = (torch.arange(num, device=start.device, dtype=start.dtype) + 0.5) / num
    pixels = start[:, None] + fractions[None, :] * length[:, None]
    return 2 * (pixels - t_start[:, None]) / t_length[:, None] - 1


def block_masks(batch: int, grid: Grid, ratio: Sequence[float] = (0.1, 0.5), mask_prob: float = 0.5,
                min_num_patches: Optional[int] = None, aspect: Sequence[float] = (0.3, 1 / 0.3),
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """BEiT block-wise masking (arXiv 2106.08254) as iBOT draws it per image (arXiv 2111.07832).

    Each image is masked with probability ``mask_prob``, then with a target of floor(U(ratio) N) tokens covered by
    random rectangles (:func:`block_mask`); the others get no mask. Rows therefore differ in count (replace mode).

    Args:
        batch (int): B.
        grid (tuple[int, int]): (gh, gw).
        ratio (tuple[float, float]): Range of the per-image target ratio (iBOT: 0.3 +- 0.2).
        mask_prob (float): Probability that an image is masked at all (iBOT: 0.5).
        min_num_patches (int, optional): Smallest rectangle area; (min(gh, gw) // 3)**2 when None (iBOT).
        aspect (tuple[float, float]): Range of the rectangles' height / width, sampled log-uniformly.
        generator (torch.Generator, optional): CPU generator seeding the draws; torch's default RNG when None.

    Returns:
        Tensor: (B, N) bool on the CPU, True = masked.
    """
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    rng = np.random.default_rng(seed)
    num_tokens = grid[0] * grid[1]
    masks = []
    for _ in range(batch):
        target = int(rng.uniform(*ratio) * num_tokens) if rng.random() < mask_prob else 0
        masks.append(block_mask(grid, target, rng, min_num_patches, aspect))
    return torch.from_numpy(np.stack(masks).reshape(batch, num_tokens))


def block_mask(grid: Grid, num_masked: int, rng: np.random.Generator, min_num_patches: Optional[int] = None,
               aspect: Sequence[float] = (0.3, 1 / 0.3)) -> np.ndarray:
    """One (gh, gw) bool mask: rectangles added until ``num_masked`` tokens are covered (never more) or ten draws in
    a row fail to add any; arguments as :func:`block_masks`."""
    min_area = (min(grid) // 3) ** 2 if min_num_patches is None else min_num_patches
    log_aspect = (math.log(aspect[0]), math.log(aspect[1]))
    mask = np.zeros(grid, dtype=bool)
    count = 0
    while count < num_masked:
        added = add_rectangle(mask, num_masked - count, min_area, log_aspect, rng)
        if added == 0:
            break
        count += added
    return mask


def add_rectangle(mask: np.ndarray, budget: int, min_area: float, log_aspect: Tuple[float, float],
                  rng: np.random.Generator, attempts: int = 10) -> int:
    """Draw up to ``attempts`` rectangles (area ~ U(min_area, budget), log aspect ~ U(log_aspect)); set the first that
    adds between 1 and ``budget`` new tokens to True in ``mask`` (gh, gw) and return how many it added (0: none)."""
    for _ in range(attempts):
        # as Python's random.uniform, which BEiT uses: budget < min_area is allowed (area then lies between them)
        area = min_area + (budget - min_area) * rng.random()
        ratio = math.exp(rng.uniform(*log_aspect))
        height, width = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if height < mask.shape[0] and width < mask.shape[1]:
            top = int(rng.integers(0, mask.shape[0] - height, endpoint=True))
            left = int(rng.integers(0, mask.shape[1] - width, endpoint=True))
            window = mask[top:top + height, left:left + width]
            added = height * width - int(window.sum())
            if 0 < added <= budget:
                window[...] = True
                return added
    return 0
