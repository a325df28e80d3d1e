"""Frozen-feature dense probes: ridge regressions on cached patch features, solved in closed form.

They ask what a frozen image encoder's patch tokens already hold for semantic segmentation and box detection, without
the optimiser noise and cost of a fine-tuned head: iBOT's linear evaluation (arXiv 2111.07832; the patch tokens of the
last K blocks, each through the encoder's final LayerNorm, concatenated) taken to convergence. Every probe is a ridge
regression on standardised features with an unpenalised bias, its lambda picked from a log grid by the squared error
on a held-out 20 % of the training images, then refit on all of them.

Data: the synthetic world's ADE-style, COCO-style and classification splits
(:mod:`detailclip.datasets.synthetic_world`), read from disk. The encoder sees them at its own input size (resized,
antialiased), the grid it was trained on; targets and metrics stay at the labels' resolution, each patch covering a
cell of ``label size / grid`` pixels. Metrics, all in %:

- ``seg_mIoU``: per patch, the fraction of each class's pixels (background a column too); the val scores are upsampled
  bilinearly to the label size and arg-maxed over the shape classes, as a head of the 8 shapes does. IoU per shape
  class over the dataset, background pixels ignored (mmseg's ``IoUMetric`` with ``reduce_zero_label=True``), averaged
  over the classes present.
- ``seg_mIoU_small``: the same IoU over the pixels of small objects only. A pixel is a small object's when its region
  (8-connected pixels of one label) fits in ``SMALL_EXTENT`` x the image side on both axes: the generator draws small
  objects 0.10-0.15 of the side across and large ones 0.30-0.45 (a large triangle is at least 0.26 wide), so the
  threshold splits them unless occlusion cuts a large object into small fragments (those count as small) or two
  objects of one shape touch (one region).
- ``box_AP``, ``box_AP50``, ``box_AP_small``: FCOS-like (arXiv 1904.01355) with linear heads. A patch's class is that
  of the annotated instance whose visible mask covers the patch centre pixel, and each instance also claims the patch
  of its mask centroid (later annotations, in front, win), so no small object lacks a positive patch; its box target
  is the (l, t, r, b) distances from the patch centre to that instance's box over the image side, fit on positive
  patches only. Every val patch whose best shape score beats its background score becomes a box with that score;
  class-wise NMS at IoU 0.5, 100 boxes per image, COCOeval ``bbox``. ``AP_small`` is COCO's (area < 32^2 pixels),
  comparable with mmdet's ``bbox_mAP_s``; on 128-pixel images that range also holds large objects that are thin
  (diamonds and triangles from about 440 pixels) or partly hidden, and it is None when no val instance is in it.
- ``object_top1``, ``object_top1_small``: does a patch feature know the object under it? Each annotated object of the
  COCO-style split is the mean of its image's patch features, each weighted by the fraction of the patch's cell that
  the object's visible mask covers; a ridge classifier of the 8 shapes on them (the arg-max of its one-hot
  regression), top-1 over the val objects, and over the small ones (box within ``SMALL_EXTENT`` x the side).
- ``image_top1``: the control, shape knowledge pooled over a whole image: the same classifier on the mean patch
  feature of the classification split's one-object images. An encoder whose shape knowledge is spread over all of an
  image's tokens rather than held by the object's own patches scores here and not on ``object_top1``.
"""
import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.ops import batched_nms
from tqdm import tqdm

from detailclip.datasets.synthetic_world import CLASSIFICATION_DIR, SHAPES
from detailclip.datasets.transforms import upright_rgb
from detailclip.models.data_preprocessor import IMAGENET_MEAN, IMAGENET_STD

NUM_CLASSES = len(SHAPES)  # shape classes; probe targets add background as column 0
LAMBDAS = tuple(10.0 ** k for k in range(-6, 2))
HOLDOUT = 0.2
SMALL_EXTENT = 0.2
NMS_IOU = 0.5
MAX_DETECTIONS = 100
SPLITS = ('train', 'val')

# (category id from 1, visible mask (H, W) bool, box (4,) as (x0, y0, x1, y1) in pixels)
Instance = Tuple[int, np.ndarray, np.ndarray]


@dataclass
class SegSplit:
    """ADE-style split: images (B, 3, H, W) uint8 and label maps (B, H, W) long (0 = background)."""

    images: torch.Tensor
    labels: torch.Tensor


@dataclass
class BoxSplit:
    """COCO-style split: images (B, 3, H, W) uint8, their COCO ids, per image its instances back to front, and the
    annotation file COCOeval reads."""

    images: torch.Tensor
    image_ids: List[int]
    instances: List[List[Instance]]
    ann_file: str


@dataclass
class ClassSplit:
    """Classification split: images (B, 3, H, W) uint8 of one object each and its shape (B,) long from 0."""

    images: torch.Tensor
    labels: torch.Tensor


@dataclass
class DenseData:
    """The probes' splits of a synthetic world, each keyed by ``SPLITS``: segmentation, boxes and, for the
    image-level control, classification."""

    seg: Dict[str, SegSplit]
    box: Dict[str, BoxSplit]
    cls: Dict[str, ClassSplit]

    @property
    def image_size(self) -> int:
        """Side of the (square) images."""
        return self.seg['train'].images.shape[-1]


# ------------------------------------------------------------------------------------------------------- data


def _read_rgb(path: Path) -> torch.Tensor:
    """An image file as (3, H, W) uint8, upright by its EXIF orientation (as mmcv's loader reads images for mmseg
    and mmdet; label maps are read as stored)."""
    with Image.open(path) as img:
        return torch.from_numpy(np.array(upright_rgb(img))).permute(2, 0, 1)


def read_seg_split(root: Path, split: str) -> SegSplit:
    """The ADE-style split ``split`` (``'train'`` or ``'val'``) of the world at ``root``."""
    folder = {'train': 'training', 'val': 'validation'}[split]
    paths = sorted((root / 'ade' / 'images' / folder).glob('*.jpg'))
    if not paths:
        raise FileNotFoundError(f'no images in {root / "ade" / "images" / folder}')
    labels = [np.asarray(Image.open(root / 'ade' / 'annotations' / folder / f'{p.stem}.png')) for p in paths]
    return SegSplit(torch.stack([_read_rgb(p) for p in paths]), torch.from_numpy(np.stack(labels)).long())


def rle_decode(rle: dict) -> np.ndarray:
    """COCO compressed RLE -> boolean mask (H, W); the inverse of ``synthetic_world.rle_encode`` (pycocotools'
    ``rleFrString``, written out so that the core package needs no pycocotools)."""
    counts, chars, pos = [], rle['counts'], 0
    while pos < len(chars):
        value, shift, more = 0, 0, True
        while more:
            char = ord(chars[pos]) - 48
            value |= (char & 0x1F) << (5 * shift)
            more = bool(char & 0x20)
            pos, shift = pos + 1, shift + 1
            if not more and char & 0x10:
                value |= -1 << (5 * shift)  # sign extension
        counts.append(value + counts[-2] if len(counts) > 2 else value)
    height, width = rle['size']
    flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)  # runs alternate, background first
    return flat.reshape(width, height).T  # column-major, as COCO stores masks


def read_box_split(root: Path, split: str) -> BoxSplit:
    """The COCO-style split ``split`` (``'train'`` or ``'val'``) of the world at ``root``."""
    ann_file = root / 'coco' / 'annotations' / f'instances_{split}2017.json'
    coco = json.loads(ann_file.read_text())
    images = sorted(coco['images'], key=lambda im: im['id'])
    instances = {im['id']: [] for im in images}
    for ann in sorted(coco['annotations'], key=lambda a: a['id']):  # the generator writes them back to front
        x, y, w, h = ann['bbox']
        box = np.array([x, y, x + w, y + h], dtype=np.float32)
        instances[ann['image_id']].append((ann['category_id'], rle_decode(ann['segmentation']), box))
    pixels = torch.stack([_read_rgb(root / 'coco' / f'{split}2017' / im['file_name']) for im in images])
    return BoxSplit(pixels, [im['id'] for im in images], [instances[im['id']] for im in images], str(ann_file))


def read_class_split(root: Path, split: str) -> ClassSplit:
    """The classification split ``split`` (``'train'`` or ``'val'``) of the world at ``root``: a folder per shape."""
    folder = root / CLASSIFICATION_DIR / split
    found = [(p, k) for k, shape in enumerate(SHAPES) for p in sorted((folder / shape).glob('*.jpg'))]
    if not found:
        raise FileNotFoundError(f'no images in {folder}/<shape>')
    return ClassSplit(torch.stack([_read_rgb(p) for p, _ in found]), torch.tensor([k for _, k in found]))


def read_dense_data(root: str) -> DenseData:
    """Every split the probes read from the synthetic world at ``root``."""
    root = Path(root)
    return DenseData(*({s: read(root, s) for s in SPLITS} for read in (read_seg_split, read_box_split,
                                                                        read_class_split)))


# --------------------------------------------------------------------------------------------------- features


@torch.no_grad()
def extract_features(encoder: torch.nn.Module, images: torch.Tensor, layers: int = 4,
                     mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                     batch_size: int = 50, bar: Optional[tqdm] = None) -> torch.Tensor:
    """Patch features of the last ``layers`` blocks, each after the encoder's final norm, concatenated (iBOT).

    Args:
        encoder: A timm-style ViT (``forward_intermediates``); put in eval mode. Images of another size than its
            ``patch_embed.img_size`` are resized to it (bilinear, antialiased).
        images: (B, 3, H, W) uint8.
        layers: K, the number of last blocks.
        mean: Per-channel mean on the 0-255 scale (the pretraining data preprocessor's).
        std: Per-channel standard deviation on the 0-255 scale.
        batch_size: Images per forward.
        bar: Progress bar to advance by the images done.

    Returns:
        (B, N, K * D) float32, patches in raster order.
    """
    encoder.eval()
    mean, std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    size = tuple(encoder.patch_embed.img_size)
    chunks = []
    for chunk in images.split(batch_size):
        x = chunk.float()
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode='bilinear', antialias=True, align_corners=False)
        x = (x - mean) / std
        tokens = encoder.forward_intermediates(x, indices=layers, norm=True, output_fmt='NLC', intermediates_only=True)
        chunks.append(torch.cat(tokens, dim=-1).float())
        if bar is not None:
            bar.update(len(chunk))
    return torch.cat(chunks)


# ------------------------------------------------------------------------------------------------------ ridge


@dataclass
class RidgeProbe:
    """A linear map on standardised features: ``[(x - mean) / std, 1] @ weight``.

    Attributes:
        weight: (D + 1, K) float64, the bias last.
        mean: (D,) training feature mean.
        std: (D,) training feature standard deviation.
        lam: The ridge strength it was fit with.
    """

    weight: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    lam: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) features -> (..., K) float32 outputs."""
        return (design(x.reshape(-1, x.shape[-1]), self.mean, self.std) @ self.weight).float().view(*x.shape[:-1], -1)


def design(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(M, D) features -> (M, D + 1) float64 design matrix: standardised, with a ones column for the bias."""
    x = (x.double() - mean) / std
    return torch.cat([x, x.new_ones(len(x), 1)], dim=1)


def ridge_solve(xtx: torch.Tensor, xty: torch.Tensor, lam: float, num: int) -> torch.Tensor:
    """Minimiser of ``|X W - Y|^2 / num + lam |W[:-1]|^2`` (the bias row unpenalised) from the normal equations.

    Args:
        xtx: (D + 1, D + 1) float64 ``X^T X``.
        xty: (D + 1, K) float64 ``X^T Y``.
        lam: Ridge strength per sample.
        num: Rows M of X.

    Returns:
        W (D + 1, K) float64.
    """
    penalty = torch.ones(len(xtx), dtype=xtx.dtype)
    penalty[-1] = 0
    return torch.linalg.solve(xtx + lam * num * torch.diag(penalty), xty)


def fit_ridge(x: torch.Tensor, y: torch.Tensor, groups: torch.Tensor, lambdas: Sequence[float] = LAMBDAS,
              holdout: float = HOLDOUT, seed: int = 0) -> RidgeProbe:
    """Ridge regression with lambda picked by the squared error on held-out groups (images), then refit on all.

    Args:
        x: (M, D) features.
        y: (M, K) targets.
        groups: (M,) long, the image of each row; a seeded ``holdout`` fraction of the images is held out.
        lambdas: The grid of ridge strengths.
        holdout: Fraction of the groups held out to pick lambda.
        seed: Seed of the held-out draw.

    Returns:
        The probe refit on every row with the chosen lambda.
    """
    std, mean = torch.std_mean(x.double(), dim=0)
    std = std.clamp_min(1e-6)  # a constant feature (a dead channel) must not divide by zero
    ids = groups.unique()
    order = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    held = ids[order[:max(1, round(holdout * len(ids)))]]
    is_held = torch.isin(groups, held)
    fit_x, held_x = design(x[~is_held], mean, std), design(x[is_held], mean, std)
    fit_y, held_y = y[~is_held].double(), y[is_held].double()
    fit_xtx, fit_xty = fit_x.T @ fit_x, fit_x.T @ fit_y
    errors = [((held_x @ ridge_solve(fit_xtx, fit_xty, lam, len(fit_x)) - held_y) ** 2).mean().item()
              for lam in lambdas]
    lam = lambdas[int(np.argmin(errors))]
    weight = ridge_solve(fit_xtx + held_x.T @ held_x, fit_xty + held_x.T @ held_y, lam, len(x))
    return RidgeProbe(weight, mean, std, lam)


def patch_rows(feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, N, D) patch features as (B * N, D) rows, and the image of each row (B * N,), the groups of
    :func:`fit_ridge`."""
    return feats.flatten(0, 1), torch.arange(len(feats)).repeat_interleave(feats.shape[1])


# ------------------------------------------------------------------------------------------------ segmentation


def soft_patch_targets(labels: torch.Tensor, patch: int, num_classes: int = NUM_CLASSES + 1) -> torch.Tensor:
    """The fraction of each class's pixels in every patch.

    Args:
        labels: (B, H, W) long label maps.
        patch: Patch side p.
        num_classes: C, background included.

    Returns:
        (B, N, C) float32, N = (H / p) * (W / p) in raster order; rows sum to 1.
    """
    one_hot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(one_hot, patch).flatten(2).transpose(1, 2)


def predict_labels(scores: torch.Tensor, grid: Tuple[int, int], size: Tuple[int, int]) -> torch.Tensor:
    """Per-patch class scores (B, N, C), background first -> shape label maps (B, H, W) long from 1: bilinear
    upsampling, then arg-max over the shape classes (background pixels are not scored, so none is predicted)."""
    maps = scores[..., 1:].transpose(1, 2).reshape(len(scores), -1, *grid)
    return F.interpolate(maps, size=size, mode='bilinear', align_corners=False).argmax(1) + 1


def class_iou(pred: torch.Tensor, labels: torch.Tensor, valid: Optional[torch.Tensor] = None,
              num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """IoU of every shape class over a set of images, background pixels ignored (mmseg, ``reduce_zero_label``).

    Args:
        pred: (B, H, W) long predictions, 0 = background (a miss for the pixel's class).
        labels: (B, H, W) long ground truth, 0 = background (ignored).
        valid: (B, H, W) bool, the pixels to count (all when None).
        num_classes: Shape classes, labels 1..num_classes.

    Returns:
        (num_classes,) float64, NaN for a class neither predicted nor present on the counted pixels.
    """
    keep = labels > 0 if valid is None else (labels > 0) & valid
    pred, labels = pred[keep], labels[keep]
    inter = _class_areas(labels[pred == labels], num_classes)
    return inter / (_class_areas(pred, num_classes) + _class_areas(labels, num_classes) - inter)


def _class_areas(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pixels (num_classes,) float64 of each class 1..num_classes among ``labels`` (P,)."""
    return torch.bincount(labels, minlength=num_classes + 1)[1:].double()


def mean_iou(pred: torch.Tensor, labels: torch.Tensor, valid: Optional[torch.Tensor] = None) -> float:
    """Mean of :func:`class_iou` over the classes it defines, in %."""
    return 100 * class_iou(pred, labels, valid).nanmean().item()


def connected_components(labels: torch.Tensor) -> torch.Tensor:
    """Regions of 8-connected pixels of one non-zero label, by union-find with pointer jumping (vectorised).

    Args:
        labels: (B, H, W) long, 0 = background.

    Returns:
        (B, H, W) long: each region's smallest flat pixel index (over the batch); -1 on background.
    """
    a, b = _same_label_neighbours(labels)
    parent = torch.arange(labels.numel())
    while not torch.equal(parent[a], parent[b]):
        root_a, root_b = parent[a], parent[b]
        parent.scatter_reduce_(0, torch.maximum(root_a, root_b), torch.minimum(root_a, root_b), 'amin')
        while not torch.equal(parent[parent], parent):
            parent = parent[parent]
    return torch.where(labels > 0, parent.view_as(labels), -1)


def _same_label_neighbours(labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (E,), (E,) of the 8-neighbour pixel pairs that share a non-zero label, each pair once."""
    index = torch.arange(labels.numel()).view_as(labels)
    height, width = labels.shape[-2:]
    firsts, seconds = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        first = (slice(None), slice(0, height - dy), slice(max(0, -dx), width - max(0, dx)))
        second = (slice(None), slice(dy, height), slice(max(0, dx), width - max(0, -dx)))
        same = (labels[first] == labels[second]) & (labels[first] > 0)
        firsts.append(index[first][same])
        seconds.append(index[second][same])
    return torch.cat(firsts), torch.cat(seconds)


def small_object_mask(labels: torch.Tensor, max_extent: float = SMALL_EXTENT) -> torch.Tensor:
    """Pixels of small objects: those whose region (:func:`connected_components`) fits in ``max_extent`` x the
    image side on both axes.

    Args:
        labels: (B, H, W) long, 0 = background.
        max_extent: Largest region extent over the image side.

    Returns:
        (B, H, W) bool.
    """
    regions = connected_components(labels)
    fg = regions >= 0
    ids = regions[fg]
    rows, cols = torch.meshgrid(torch.arange(labels.shape[1]), torch.arange(labels.shape[2]), indexing='ij')
    extent = torch.maximum(_extent(ids, rows.expand_as(labels)[fg]), _extent(ids, cols.expand_as(labels)[fg]))
    small = torch.zeros_like(fg)
    small[fg] = extent <= max_extent * max(labels.shape[1:])
    return small


def _extent(ids: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Per pixel (P,), the extent in pixels along ``coords`` (P,) of its region ``ids`` (P,)."""
    empty = torch.zeros(int(ids.max()) + 1, dtype=coords.dtype)
    high = empty.scatter_reduce(0, ids, coords, 'amax', include_self=False)
    low = empty.scatter_reduce(0, ids, coords, 'amin', include_self=False)
    return (high - low + 1)[ids]


def segmentation_probe(train_feats: torch.Tensor, train: SegSplit, val_feats: torch.Tensor, val: SegSplit,
                       patch: int, lambdas: Sequence[float] = LAMBDAS) -> dict:
    """Fit the segmentation probe on the training split and score the val split.

    Args:
        train_feats: (B, N, D) features of ``train``'s images.
        train: The training split.
        val_feats: (B', N, D) features of ``val``'s images.
        val: The val split.
        patch: Side in label pixels of the cell one feature covers (:func:`label_cell`).
        lambdas: Ridge strengths to pick from.

    Returns:
        ``dict(mIoU, mIoU_small, lambda)``.
    """
    x, groups = patch_rows(train_feats)
    probe = fit_ridge(x, soft_patch_targets(train.labels, patch).flatten(0, 1), groups, lambdas)
    size = tuple(val.labels.shape[1:])
    pred = predict_labels(probe(val_feats), (size[0] // patch, size[1] // patch), size)
    return {'mIoU': mean_iou(pred, val.labels), 'mIoU_small': mean_iou(pred, val.labels, small_object_mask(val.labels)),
            'lambda': probe.lam}


# ------------------------------------------------------------------------------------------------------ boxes


def patch_centres(grid: Tuple[int, int], patch: int) -> torch.Tensor:
    """Centres (N, 2) float32 as (x, y) pixels of the patches of a ``grid`` (gh, gw), raster order."""
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing='ij')
    return torch.stack([cols, rows], dim=-1).flatten(0, 1).float() * patch + patch / 2


def box_patch_targets(instances: Sequence[Instance], grid: Tuple[int, int],
                      patch: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-patch class and box targets of one image (see the module docstring).

    Args:
        instances: The image's instances, back to front.
        grid: Patch grid (gh, gw).
        patch: Patch side p.

    Returns:
        Classes (N,) long (0 = background) and (l, t, r, b) distances (N, 4) float32 in pixels from each patch
        centre to its instance's box (0 on background patches).
    """
    owner = torch.full(grid, -1)
    for k, (_, mask, _) in enumerate(instances):
        owner[torch.from_numpy(mask[patch // 2::patch, patch // 2::patch][:grid[0], :grid[1]])] = k
    for k, (_, mask, _) in enumerate(instances):  # after the centres: a small object may cover no patch centre
        centroid = np.argwhere(mask).mean(0) + 0.5  # (row, column) of the pixel centres' mean
        row, col = np.minimum(centroid // patch, np.array(grid) - 1).astype(int)
        owner[row, col] = k
    owner = owner.flatten() + 1  # index 0: background
    classes = torch.tensor([0] + [c for c, _, _ in instances])[owner]
    boxes = torch.from_numpy(np.stack([np.zeros(4, np.float32)] + [b for _, _, b in instances]))[owner]
    centres = patch_centres(grid, patch)
    distances = torch.cat([centres - boxes[:, :2], boxes[:, 2:] - centres], dim=1)
    return classes, distances * (classes > 0).unsqueeze(1)


def decode_boxes(scores: torch.Tensor, distances: torch.Tensor, centres: torch.Tensor, size: Tuple[int, int],
                 iou: float = NMS_IOU, max_detections: int = MAX_DETECTIONS) -> List[Tuple[torch.Tensor, ...]]:
    """Per-patch predictions -> detections: the patches whose best shape score beats background, class-wise NMS.

    Args:
        scores: (B, N, C + 1) class scores, background first.
        distances: (B, N, 4) predicted (l, t, r, b) pixel distances from the patch centres.
        centres: (N, 2) patch centres (x, y) in pixels.
        size: Image (H, W); boxes are clipped to it and empty ones dropped.
        iou: NMS IoU threshold.
        max_detections: Boxes kept per image, best first.

    Returns:
        Per image: boxes (M, 4) as (x0, y0, x1, y1), scores (M,) and category ids (M,) from 1, best first.
    """
    best, labels = scores[..., 1:].max(-1)
    bounds = torch.tensor([size[1], size[0]] * 2, dtype=distances.dtype)
    boxes = torch.cat([centres - distances[..., :2], centres + distances[..., 2:]], -1).clamp_min(0).minimum(bounds)
    keep = (best > scores[..., 0]) & (boxes[..., 2:] > boxes[..., :2]).all(-1)
    detections = []
    for image_boxes, image_scores, image_labels, image_keep in zip(boxes, best, labels + 1, keep):
        kept = [t[image_keep] for t in (image_boxes, image_scores, image_labels)]
        top = batched_nms(*kept, iou)[:max_detections]
        detections.append(tuple(t[top] for t in kept))
    return detections


def coco_results(detections: Sequence[Tuple[torch.Tensor, ...]], image_ids: Sequence[int]) -> List[dict]:
    """:func:`decode_boxes` output as a COCO result list (``bbox`` as x, y, w, h)."""
    return [{'image_id': image_id, 'category_id': int(label), 'score': float(score),
             'bbox': [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]}
            for image_id, (boxes, scores, labels) in zip(image_ids, detections)
            for box, score, label in zip(boxes, scores, labels)]


def coco_box_metrics(ann_file: str, results: List[dict]) -> dict:
    """COCOeval ``bbox`` of ``results`` against ``ann_file``: ``dict(AP, AP50, AP_small)`` in %.

    An empty result set scores 0 (pycocotools cannot load one); ``AP_small`` is None when no ground-truth instance is
    small (COCOeval's -1).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not results:
        return {'AP': 0.0, 'AP50': 0.0, 'AP_small': 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and the summary table
        ground_truth = COCO(ann_file)
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(results), 'bbox')
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50, ap_small = (float(evaluator.stats[i]) for i in (0, 1, 3))
    return {'AP': 100 * ap, 'AP50': 100 * ap50, 'AP_small': 100 * ap_small if ap_small >= 0 else None}


def box_probe(train_feats: torch.Tensor, train: BoxSplit, val_feats: torch.Tensor, val: BoxSplit, patch: int,
              lambdas: Sequence[float] = LAMBDAS) -> dict:
    """Fit the box probe (class scores on every patch, box distances on positive ones) and score the val split. The
    arguments are those of :func:`segmentation_probe`, with COCO-style splits (:class:`BoxSplit`).

    Returns:
        ``dict(AP, AP50, AP_small, cls_lambda, reg_lambda)`` (the class and box regressions' lambdas).
    """
    size = tuple(train.images.shape[-2:])
    grid, scale = (size[0] // patch, size[1] // patch), torch.tensor([size[1], size[0]] * 2)
    classes, distances = (torch.stack(t) for t in zip(*(box_patch_targets(i, grid, patch) for i in train.instances)))
    (x, groups), classes, distances = patch_rows(train_feats), classes.flatten(), distances.flatten(0, 1)
    cls_probe = fit_ridge(x, F.one_hot(classes, NUM_CLASSES + 1).float(), groups, lambdas)
    positive = classes > 0
    reg_probe = fit_ridge(x[positive], distances[positive] / scale, groups[positive], lambdas)
    detections = decode_boxes(cls_probe(val_feats), reg_probe(val_feats) * scale, patch_centres(grid, patch), size)
    metrics = coco_box_metrics(val.ann_file, coco_results(detections, val.image_ids))
    return {**metrics, 'cls_lambda': cls_probe.lam, 'reg_lambda': reg_probe.lam}


# ---------------------------------------------------------------------------------------------------- objects


def shape_classifier(x: torch.Tensor, shapes: torch.Tensor, groups: torch.Tensor,
                     lambdas: Sequence[float] = LAMBDAS) -> RidgeProbe:
    """A ridge regression of the one-hot shapes (M,) long from 0 on features (M, D), held out by ``groups`` (M,)."""
    return fit_ridge(x, F.one_hot(shapes, NUM_CLASSES).float(), groups, lambdas)


def top1(probe: RidgeProbe, x: torch.Tensor, shapes: torch.Tensor) -> float:
    """Top-1 (%) of the probe's arg-max on features (M, D) against shapes (M,)."""
    return 100 * (probe(x).argmax(-1) == shapes).double().mean().item()


def object_rows(feats: torch.Tensor, split: BoxSplit, patch: int) -> Tuple[torch.Tensor, ...]:
    """Every annotated object as one feature row (see the module docstring).

    Args:
        feats: (B, N, D) patch features of ``split``'s images.
        split: The COCO-style split.
        patch: Side in label pixels of the cell one feature covers.

    Returns:
        Features (M, D), shapes (M,) long from 0, the image of each object (M,) and whether it is small (M,) bool.
    """
    rows, shapes, groups, small = [], [], [], []
    side = max(split.images.shape[-2:])
    for image, (image_feats, instances) in enumerate(zip(feats, split.instances)):
        for category, mask, box in instances:
            cover = F.avg_pool2d(torch.from_numpy(mask).float()[None, None], patch).flatten()  # (N,)
            rows.append(cover @ image_feats / cover.sum())
            shapes.append(category - 1)
            groups.append(image)
            small.append(bool(max(box[2:] - box[:2]) <= SMALL_EXTENT * side))
    return torch.stack(rows), torch.tensor(shapes), torch.tensor(groups), torch.tensor(small)


def object_probe(train_feats: torch.Tensor, train: BoxSplit, val_feats: torch.Tensor, val: BoxSplit, patch: int,
                 lambdas: Sequence[float] = LAMBDAS) -> dict:
    """Fit the object probe on the training split's objects and score the val split's; the arguments are those of
    :func:`box_probe`.

    Returns:
        ``dict(top1, top1_small, lambda)`` (``top1_small`` None when no val object is small).
    """
    x, shapes, groups, _ = object_rows(train_feats, train, patch)
    probe = shape_classifier(x, shapes, groups, lambdas)
    x, shapes, _, small = object_rows(val_feats, val, patch)
    return {'top1': top1(probe, x, shapes), 'top1_small': top1(probe, x[small], shapes[small]) if small.any() else None,
            'lambda': probe.lam}


def image_probe(train_feats: torch.Tensor, train: ClassSplit, val_feats: torch.Tensor, val: ClassSplit,
                lambdas: Sequence[float] = LAMBDAS) -> dict:
    """The control of :func:`object_probe`: the shape classifier on each image's mean patch feature.

    Args:
        train_feats: (B, N, D) features of ``train``'s images.
        train: The classification training split.
        val_feats: (B', N, D) features of ``val``'s images.
        val: The classification val split.
        lambdas: Ridge strengths to pick from.

    Returns:
        ``dict(top1, lambda)``.
    """
    probe = shape_classifier(train_feats.mean(1), train.labels, torch.arange(len(train_feats)), lambdas)
    return {'top1': top1(probe, val_feats.mean(1), val.labels), 'lambda': probe.lam}


# ------------------------------------------------------------------------------------------------------ probe


def label_cell(image_size: int, grid: Tuple[int, int]) -> int:
    """The side in label pixels of the cell one patch covers when ``image_size`` images map onto a ``grid``."""
    if grid[0] != grid[1] or image_size % grid[0]:
        raise ValueError(f'the {image_size}-pixel dense images do not divide into the encoder\'s {tuple(grid)} patch '
                         'grid: probe at an input size whose grid divides them (--image-size)')
    return image_size // grid[0]


def run_dense_probes(encoder: torch.nn.Module, data: DenseData, layers: int = 4,
                     mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                     lambdas: Sequence[float] = LAMBDAS, progress: bool = True) -> dict:
    """Both probes of a frozen encoder on the dense splits, each split's features extracted once.

    Args:
        encoder: A timm-style ViT; it sees the images at its ``patch_embed.img_size``, whose grid must divide them.
        data: The probes' splits (:func:`read_dense_data`).
        layers: K, the last blocks whose patch tokens are concatenated.
        mean: Per-channel input mean on the 0-255 scale (the pretraining data preprocessor's).
        std: Per-channel input standard deviation on the 0-255 scale.
        lambdas: Ridge strengths to pick from.
        progress: Show a progress bar over feature extraction.

    Returns:
        Flat ``probe/{seg,box,object,image}_*`` metrics and ``probe/feature_dim``.
    """
    cell = label_cell(data.image_size, encoder.patch_embed.grid_size)
    splits = [kind[s] for kind in (data.seg, data.box, data.cls) for s in SPLITS]
    with tqdm(total=sum(len(s.images) for s in splits), desc='probe features', unit='img', disable=not progress) as bar:
        seg_train, seg_val, box_train, box_val, cls_train, cls_val = (
            extract_features(encoder, s.images, layers, mean, std, bar=bar) for s in splits)
    boxes = (box_train, data.box['train'], box_val, data.box['val'], cell, lambdas)
    results = dict(seg=segmentation_probe(seg_train, data.seg['train'], seg_val, data.seg['val'], cell, lambdas),
                   box=box_probe(*boxes), object=object_probe(*boxes),
                   image=image_probe(cls_train, data.cls['train'], cls_val, data.cls['val'], lambdas))
    return {**{f'probe/{probe}_{k}': v for probe, found in results.items() for k, v in found.items()},
            'probe/feature_dim': seg_train.shape[-1]}
