"""Frozen-feature dense probes: the ridge solve, targets, metrics and box decoding against plain references."""
import json
from collections import deque

import numpy as np
import pytest
import torch
from PIL import Image

from detailclip.datasets.synthetic_world import rle_encode
from detailclip.evaluation.dense_probe import (LAMBDAS, NUM_CLASSES, BoxSplit, ClassSplit, box_patch_targets,
                                               class_iou, coco_box_metrics, coco_results, connected_components,
                                               decode_boxes, design, extract_features, fit_ridge, image_probe,
                                               label_cell, mean_iou, object_probe, object_rows, patch_centres,
                                               predict_labels, read_box_split, ridge_solve, rle_decode,
                                               small_object_mask, soft_patch_targets)


def _normal_equations(x, y):
    x = design(x, x.double().mean(0), x.double().std(0))
    return x, x.T @ x, x.T @ y.double()


@pytest.mark.parametrize('num,dim,out', [(200, 5, 3), (40, 12, 1), (13, 12, 2)])
def test_ridge_solve_without_penalty_is_least_squares(num, dim, out):
    torch.manual_seed(num)
    x, y = torch.randn(num, dim), torch.randn(num, out)
    design_x, xtx, xty = _normal_equations(x, y)
    expected = torch.linalg.lstsq(design_x, y.double()).solution
    torch.testing.assert_close(ridge_solve(xtx, xty, 0.0, num), expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize('lam', [1e-3, 0.1, 10.0])
def test_ridge_solve_is_the_penalised_least_squares_solution(lam):
    """The augmented system [X; sqrt(lam M) P] W = [Y; 0] is ridge regression with penalty matrix P (bias free)."""
    torch.manual_seed(0)
    num, dim = 60, 7
    x, y = torch.randn(num, dim), torch.randn(num, 2)
    design_x, xtx, xty = _normal_equations(x, y)
    penalty = (lam * num) ** 0.5 * torch.eye(dim + 1, dtype=torch.float64)[:dim]
    zeros = torch.zeros(dim, 2, dtype=torch.float64)
    augmented = torch.linalg.lstsq(torch.cat([design_x, penalty]), torch.cat([y.double(), zeros])).solution
    weight = ridge_solve(xtx, xty, lam, num)
    torch.testing.assert_close(weight, augmented, rtol=1e-8, atol=1e-8)
    weight.requires_grad_(True)  # and the objective's gradient vanishes there
    loss = ((design_x @ weight - y.double()) ** 2).sum() / num + lam * (weight[:-1] ** 2).sum()
    loss.backward()
    assert weight.grad.abs().max() < 1e-9


def test_fit_ridge_picks_the_smallest_lambda_on_noiseless_targets():
    torch.manual_seed(0)
    x = torch.randn(400, 16) * 3 + 1
    y = x @ torch.randn(16, 3) + torch.tensor([1.0, -2.0, 0.5])
    probe = fit_ridge(x, y, torch.arange(400) // 10)
    assert probe.lam == min(LAMBDAS)
    torch.testing.assert_close(probe(x), y, rtol=1e-4, atol=1e-4)


def test_fit_ridge_shrinks_when_targets_are_noise():
    torch.manual_seed(0)
    x, y = torch.randn(80, 40), torch.randn(80, 2)
    probe = fit_ridge(x, y, torch.arange(80) // 2)
    assert probe.lam == max(LAMBDAS)


@pytest.mark.parametrize('seed', range(4))
def test_rle_decode_inverts_the_generators_encoder(seed):
    rng = np.random.default_rng(seed)
    masks = [rng.uniform(size=(13, 17)) < p for p in (0.0, 0.05, 0.5, 0.95, 1.0)]
    masks.append(np.pad(np.ones((5, 6), bool), ((40, 30), (50, 20))))  # long runs: multi-char and negative deltas
    for mask in masks:
        np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)


def test_soft_patch_targets_on_a_hand_built_map():
    labels = torch.zeros(1, 4, 8, dtype=torch.long)
    labels[0, :2, :2] = 1  # a quarter of the first 4x4 patch
    labels[0, :, 4:] = 3  # the whole second patch
    targets = soft_patch_targets(labels, 4, num_classes=4)
    assert targets.shape == (1, 2, 4)
    torch.testing.assert_close(targets[0], torch.tensor([[0.75, 0.25, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))


def test_iou_of_a_perfect_prediction_is_100_with_background_predicted_anywhere():
    labels = torch.randint(0, 9, (2, 16, 16))
    pred = torch.where(labels > 0, labels, torch.randint(0, 9, labels.shape))  # background pixels are ignored
    assert mean_iou(pred, labels) == pytest.approx(100.0)


def test_iou_of_known_partial_predictions():
    labels = torch.tensor([[[1, 1, 1, 1, 2, 2, 2, 2, 0, 0]]])
    pred = torch.tensor([[[1, 1, 0, 0, 2, 2, 2, 1, 3, 3]]])
    # class 1: 2 hits, predicted on 3 counted pixels, 4 true -> 2/5; class 2: 3/4; class 3: only on ignored pixels
    iou = class_iou(pred, labels, num_classes=3)
    torch.testing.assert_close(iou[:2], torch.tensor([0.4, 0.75], dtype=torch.float64))
    assert torch.isnan(iou[2])
    assert mean_iou(pred, labels) == pytest.approx(100 * (0.4 + 0.75) / 2)
    only_first = torch.zeros_like(labels, dtype=torch.bool)
    only_first[..., :4] = True
    assert mean_iou(pred, labels, only_first) == pytest.approx(50.0)  # class 1 alone: 2 / 4


def _bfs_regions(labels: np.ndarray) -> np.ndarray:
    """Plain breadth-first labelling of 8-connected equal non-zero labels, per image (the reference)."""
    out, next_id = np.full(labels.shape, -1), 0
    for b, y, x in zip(*np.nonzero(labels)):
        if out[b, y, x] >= 0:
            continue
        out[b, y, x], queue = next_id, deque([(y, x)])
        while queue:
            cy, cx = queue.popleft()
            for ny in range(max(cy - 1, 0), min(cy + 2, labels.shape[1])):
                for nx in range(max(cx - 1, 0), min(cx + 2, labels.shape[2])):
                    if out[b, ny, nx] < 0 and labels[b, ny, nx] == labels[b, cy, cx]:
                        out[b, ny, nx] = next_id
                        queue.append((ny, nx))
        next_id += 1
    return out


@pytest.mark.parametrize('fill', [0.2, 0.5, 0.8])
def test_connected_components_match_a_flood_fill(fill):
    rng = np.random.default_rng(int(fill * 10))
    labels = np.where(rng.uniform(size=(3, 15, 13)) < fill, rng.integers(1, 4, size=(3, 15, 13)), 0)
    ours, reference = connected_components(torch.from_numpy(labels)).numpy(), _bfs_regions(labels)
    assert ((ours >= 0) == (labels > 0)).all()
    fg = labels > 0
    pairs = set(zip(ours[fg].tolist(), reference[fg].tolist()))
    assert len(pairs) == len(set(ours[fg].tolist())) == len(set(reference[fg].tolist()))  # the same partition


def test_small_object_mask_by_region_extent():
    labels = torch.zeros(1, 40, 40, dtype=torch.long)
    labels[0, 2:8, 2:8] = 1  # 6 px across <= 0.2 * 40: small
    labels[0, 20:32, 20:32] = 2  # 12 px: large
    labels[0, 2:4, 30:39] = 3  # 9 px long: large, however thin
    labels[0, 10, 10] = labels[0, 11, 11] = 4  # diagonal neighbours: one small region
    small = small_object_mask(labels)
    expected = torch.zeros_like(small)
    expected[0, 2:8, 2:8] = expected[0, 10, 10] = expected[0, 11, 11] = True
    assert torch.equal(small, expected)


def _instance(category, mask):
    rows, cols = np.nonzero(mask)
    return category, mask, np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], np.float32)


def _scene():
    """Two objects on a 32x32 image (4x4 grid of 8-pixel patches): a large one and a small one behind no centre."""
    large, small = np.zeros((32, 32), bool), np.zeros((32, 32), bool)
    large[2:15, 1:14] = True  # covers the centres (4, 4), (12, 4), (4, 12), (12, 12)
    small[18:21, 25:28] = True  # centroid (26.5, 19.5) in patch row 2, column 3; covers no centre
    return [_instance(3, large), _instance(5, small)]


def test_box_patch_targets_give_every_object_a_positive_patch():
    classes, distances = box_patch_targets(_scene(), (4, 4), 8)
    expected = torch.zeros(16, dtype=torch.long)
    expected[[0, 1, 4, 5]] = 3
    expected[2 * 4 + 3] = 5
    assert torch.equal(classes, expected)
    torch.testing.assert_close(distances[0], torch.tensor([3.0, 2.0, 10.0, 11.0]))  # centre (4, 4), box (1, 2, 14, 15)
    # centre (28, 20), box (25, 18, 28, 21)
    torch.testing.assert_close(distances[11], torch.tensor([3.0, 2.0, 0.0, 1.0]))
    assert (distances[classes == 0] == 0).all()
    torch.testing.assert_close(patch_centres((4, 4), 8)[11], torch.tensor([28.0, 20.0]))


def _write_coco(path, scenes):
    images, annotations = [], []
    for image_id, scene in enumerate(scenes, 1):
        images.append({'id': image_id, 'file_name': f'{image_id}.jpg', 'height': 32, 'width': 32})
        for category, mask, box in scene:
            x0, y0, x1, y1 = box.tolist()
            annotations.append({'id': len(annotations) + 1, 'image_id': image_id, 'category_id': category,
                                'bbox': [x0, y0, x1 - x0, y1 - y0], 'area': float(mask.sum()), 'iscrowd': 0,
                                'segmentation': rle_encode(mask)})
    path.write_text(json.dumps({'images': images, 'annotations': annotations,
                                'categories': [{'id': k, 'name': str(k)} for k in range(1, 9)]}))


def test_perfect_patch_predictions_score_full_box_ap(tmp_path):
    pytest.importorskip('pycocotools')
    flipped = [(c, m[:, ::-1].copy(), np.array([32 - b[2], b[1], 32 - b[0], b[3]], np.float32)) for c, m, b in _scene()]
    scenes = [_scene(), flipped]
    ann_file = tmp_path / 'instances.json'
    _write_coco(ann_file, scenes)
    targets = [box_patch_targets(scene, (4, 4), 8) for scene in scenes]
    scores = torch.nn.functional.one_hot(torch.stack([t[0] for t in targets]), 9).float()
    detections = decode_boxes(scores, torch.stack([t[1] for t in targets]), patch_centres((4, 4), 8), (32, 32))
    assert [len(d[0]) for d in detections] == [2, 2]  # one box per object after NMS
    metrics = coco_box_metrics(str(ann_file), coco_results(detections, [1, 2]))
    assert metrics == pytest.approx({'AP': 100.0, 'AP50': 100.0, 'AP_small': 100.0})
    assert coco_box_metrics(str(ann_file), []) == {'AP': 0.0, 'AP50': 0.0, 'AP_small': 0.0}


def test_read_box_split_decodes_the_masks(tmp_path):
    (tmp_path / 'coco' / 'annotations').mkdir(parents=True)
    (tmp_path / 'coco' / 'val2017').mkdir()
    _write_coco(tmp_path / 'coco' / 'annotations' / 'instances_val2017.json', [_scene()])
    Image.new('RGB', (32, 32)).save(tmp_path / 'coco' / 'val2017' / '1.jpg')
    split = read_box_split(tmp_path, 'val')
    assert split.images.shape == (1, 3, 32, 32) and split.image_ids == [1]
    for (category, mask, box), (want_category, want_mask, want_box) in zip(split.instances[0], _scene()):
        assert category == want_category
        np.testing.assert_array_equal(mask, want_mask)
        np.testing.assert_array_equal(box, want_box)


def test_predicted_labels_are_shapes_even_where_background_scores_highest():
    """As a head of the 8 shapes: background pixels are ignored by the metric, so only the shapes compete."""
    scores = torch.zeros(1, 4, NUM_CLASSES + 1)
    scores[..., 0] = 5.0  # background best everywhere
    scores[0, :, 3] = 1.0  # shape 3 best of the shapes
    pred = predict_labels(scores, (2, 2), (8, 8))
    assert pred.shape == (1, 8, 8) and bool((pred == 3).all())


def test_features_at_the_encoders_own_grid():
    """Images of another size are resized to the encoder's input; a patch then covers label_cell label pixels."""
    from detailclip.models.encoders.vit import VisionTransformer
    torch.manual_seed(0)
    encoder = VisionTransformer(img_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2)
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    small = torch.nn.functional.interpolate(images.float(), size=(32, 32), mode='bilinear', antialias=True)
    feats = extract_features(encoder, images, layers=2)
    assert feats.shape == (3, 16, 32)
    torch.testing.assert_close(feats, extract_features(encoder, small, layers=2))
    assert label_cell(64, (4, 4)) == 16
    with pytest.raises(ValueError, match='--image-size'):
        label_cell(60, (8, 8))


def test_object_rows_weigh_patches_by_the_visible_mask():
    """On the 4x4 grid of :func:`_scene`: the large object (rows 2-14, columns 1-13) covers 42, 36, 49 and 42
    pixels of patches 0, 1, 4 and 5; the small one covers 9 pixels of patch 11 only."""
    feats = torch.arange(16.0).view(1, 16, 1).repeat(1, 1, 2)  # patch n's feature is (n, n)
    split = BoxSplit(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), [1], [_scene()], '')
    rows, shapes, groups, small = object_rows(feats, split, 8)
    cover = torch.tensor([6 * 7, 6 * 6, 7 * 7, 7 * 6], dtype=torch.float)  # rows x columns in patches 0, 1, 4, 5
    expected = (cover * torch.tensor([0.0, 1, 4, 5])).sum() / cover.sum()
    torch.testing.assert_close(rows, torch.tensor([[expected, expected], [11.0, 11.0]]))
    assert shapes.tolist() == [2, 4] and groups.tolist() == [0, 0] and small.tolist() == [False, True]


def _random_scenes(count, seed):
    """Scenes of two objects on 32x32 images, each in its own random 8-pixel patch, with random shapes."""
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(count):
        objects = []
        for cell in rng.choice(16, 2, replace=False):
            mask = np.zeros((32, 32), bool)
            row, col = divmod(int(cell), 4)
            mask[8 * row + 2:8 * row + 6, 8 * col + 2:8 * col + 6] = True
            objects.append(_instance(int(rng.integers(1, NUM_CLASSES + 1)), mask))
        scenes.append(objects)
    return scenes


def _features(scenes, local):
    """(B, 16, 8) features: the one-hot shape of the object in each patch (``local``), or the mean of the image's
    objects' one-hot shapes in every patch (knowledge spread over the image), plus a little noise."""
    feats = torch.randn(len(scenes), 16, NUM_CLASSES, generator=torch.Generator().manual_seed(0)) * 0.01
    for image, scene in enumerate(scenes):
        for category, mask, _ in scene:
            cell = int(np.argwhere(mask)[0][0] // 8 * 4 + np.argwhere(mask)[0][1] // 8)
            one_hot = torch.nn.functional.one_hot(torch.tensor(category - 1), NUM_CLASSES).float()
            if local:
                feats[image, cell] += one_hot
            else:
                feats[image] += one_hot / len(scene)
    return feats


def test_object_probe_reads_local_shape_knowledge_and_not_knowledge_spread_over_the_image():
    train, val = (_random_scenes(count, seed) for count, seed in ((60, 0), (30, 1)))
    splits = [BoxSplit(torch.zeros(len(s), 3, 32, 32, dtype=torch.uint8), list(range(len(s))), s, '')
              for s in (train, val)]
    local = object_probe(_features(train, True), splits[0], _features(val, True), splits[1], 8)
    assert local['top1'] == 100.0 and local['top1_small'] == 100.0
    spread = object_probe(_features(train, False), splits[0], _features(val, False), splits[1], 8)
    assert spread['top1'] < 75.0  # an object and its neighbour look alike: at best one of two is right


def test_image_probe_reads_shape_knowledge_pooled_over_the_image():
    shapes = torch.arange(40) % NUM_CLASSES
    feats = torch.randn(40, 16, NUM_CLASSES, generator=torch.Generator().manual_seed(0)) * 0.01
    feats[torch.arange(40), (3 * shapes) % 16, shapes] += 1.0  # one patch of each image knows its shape
    split = ClassSplit(torch.zeros(40, 3, 32, 32, dtype=torch.uint8), shapes)
    assert image_probe(feats, split, feats, split)['top1'] == 100.0
