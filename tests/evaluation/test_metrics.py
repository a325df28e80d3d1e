"""Zero-shot and retrieval metrics on hand-made similarities with known answers and against plain references."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

from detailclip.datasets.tokenizer import CLIPTokenizer
from detailclip.evaluation import RetrievalRecall, ZeroShotAccuracy, retrieval_recall
from detailclip.evaluation.zero_shot import mean_per_class_recall, topk_accuracy
from detailclip.registry import METRICS, MODELS

CONFIG = 'configs/clip/clip_vit-tiny-p8_1xb128-coslr-12e_synthetic-world.py'


# -------------------------------------------------------------------------------------------------------- retrieval
def reference_recall(sim, owner, ks):
    """Plain loops: sort each row / column and find the position of the first own item."""
    n_img, n_txt = sim.shape
    out = {}
    i2t = []
    for i in range(n_img):
        order = sorted(range(n_txt), key=lambda j: -float(sim[i, j]))
        i2t.append(min(pos for pos, j in enumerate(order) if owner[j] == i))
    t2i = []
    for j in range(n_txt):
        order = sorted(range(n_img), key=lambda i: -float(sim[i, j]))
        t2i.append(order.index(int(owner[j])))
    for name, ranks in (('i2t', i2t), ('t2i', t2i)):
        for k in ks:
            out[f'{name}_R@{k}'] = 100. * sum(r < k for r in ranks) / len(ranks)
        out[f'{name}_mean'] = sum(out[f'{name}_R@{k}'] for k in ks) / len(ks)
    return out


def hand_case():
    """12 images; caption j belongs to image j (j < 12) and caption 12 is image 0's second caption.

    Image 0: its second caption is ranked 2 (captions 3, 4 above), its first caption is ranked 8 -> counts for R@5.
    Image 1: ten captions above its own -> rank 10, misses R@10. Images 2..11: own caption first.
    Captions: 2, 10, 11 have one foreign image above (image 1), 3..9 have two (images 0 and 1), others none.
    """
    sim = torch.zeros(12, 13)
    sim[torch.arange(12), torch.arange(12)] = 1.
    sim[0, 0], sim[0, 12] = 0.5, 1.5
    sim[0, 3:5] = 2.
    sim[0, 5:10] = 1.2
    sim[1, 2:12] = 2.
    owner = torch.tensor(list(range(12)) + [0])
    # embeddings whose dot products are exactly sim: identity image embeds, text embeds = sim^T
    return torch.eye(12), sim.T.contiguous(), owner


def test_retrieval_recall_hand_case():
    images, texts, owner = hand_case()
    metrics = retrieval_recall(images, texts, owner, ks=(1, 5, 10))
    expected = {'i2t_R@1': 100 * 10 / 12, 'i2t_R@5': 100 * 11 / 12, 'i2t_R@10': 100 * 11 / 12,
                't2i_R@1': 100 * 3 / 13, 't2i_R@5': 100., 't2i_R@10': 100.}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-4), key
    assert metrics['i2t_mean'] == pytest.approx(100 * 32 / 36, abs=1e-4)
    assert metrics['t2i_mean'] == pytest.approx((100 * 3 / 13 + 200) / 3, abs=1e-4)
    assert metrics == pytest.approx(reference_recall(images @ texts.T, owner, (1, 5, 10)), abs=1e-4)
    # other K: image 0 (best own caption at rank 2) counts from K=3; captions 2, 10, 11 (rank 1) count from K=2,
    # captions 3..9 (rank 2) from K=3
    k3 = retrieval_recall(images, texts, owner, ks=(2, 3, 9))
    assert k3['i2t_R@2'] == pytest.approx(100 * 10 / 12, abs=1e-4)
    assert k3['i2t_R@3'] == pytest.approx(100 * 11 / 12, abs=1e-4)
    assert k3['t2i_R@2'] == pytest.approx(100 * 6 / 13, abs=1e-4)
    assert k3['t2i_R@3'] == pytest.approx(100., abs=1e-4)


def test_retrieval_identity_and_swaps():
    n = 20
    perfect = retrieval_recall(torch.eye(n), torch.eye(n), torch.arange(n))
    assert all(v == pytest.approx(100.) for v in perfect.values())
    # swap the captions of images 0<->1 and 2<->3: those four miss R@1 both ways (own item ranked second)
    perm = torch.arange(n)
    perm[[0, 1, 2, 3]] = torch.tensor([1, 0, 3, 2])
    texts = torch.eye(n)[perm] + 0.5 * torch.eye(n)  # caption j: 1 on image perm[j], 0.5 on image j
    metrics = retrieval_recall(torch.eye(n), texts, torch.arange(n))
    assert metrics['i2t_R@1'] == pytest.approx(80.) and metrics['t2i_R@1'] == pytest.approx(80.)
    assert metrics['i2t_R@5'] == pytest.approx(100.) and metrics['t2i_R@5'] == pytest.approx(100.)


@pytest.mark.parametrize('n_img,caps,d,seed', [(7, 1, 16, 0), (15, 5, 8, 1), (30, 3, 4, 2)])
def test_retrieval_recall_random_against_reference(n_img, caps, d, seed):
    gen = torch.Generator().manual_seed(seed)
    images = F.normalize(torch.randn(n_img, d, generator=gen), dim=-1)
    owner = torch.arange(n_img).repeat_interleave(caps)
    owner = owner[torch.randperm(len(owner), generator=gen)]  # captions in any order
    texts = F.normalize(images[owner] + 0.8 * torch.randn(len(owner), d, generator=gen), dim=-1)
    ks = (1, 2, 5, 10)
    got = retrieval_recall(images, texts, owner, ks)
    assert got == pytest.approx(reference_recall(images @ texts.T, owner, ks), abs=1e-4)


def _samples(images, texts, owner):
    return [dict(img_id=i, image_embeds=images[i], text_embeds=texts[owner == i]) for i in range(len(images))]


def test_retrieval_metric_deduplicates_padded_results():
    images, texts, owner = hand_case()
    expected = retrieval_recall(images, texts, owner)
    samples = _samples(images, texts, owner)
    metric = METRICS.build(dict(type='RetrievalRecall'))
    assert isinstance(metric, RetrievalRecall)
    # two "ranks" of a padded distributed collection: out of order, the first two results repeated at the end
    metric.process(None, samples[6:])
    metric.process(None, samples[:6])
    padded = metric.results + metric.results[:2]
    got = metric.compute_metrics(padded)
    assert got == pytest.approx(expected, abs=1e-4)
    # without deduplication the answer would differ: the repeated images and captions join the gallery
    naive = retrieval_recall(torch.stack([r['images']['student'] for r in padded]),
                             torch.cat([r['texts']['student'] for r in padded]),
                             torch.cat([torch.full((len(r['texts']['student']), ), i) for i, r in enumerate(padded)]))
    assert naive['i2t_R@1'] != pytest.approx(expected['i2t_R@1'], abs=1e-4)


def test_retrieval_metric_evaluate_with_prefix():
    images, texts, owner = hand_case()
    metric = RetrievalRecall(ks=(1, 5))
    metric.process(None, [dict(s, image_embeds=s['image_embeds'].to(torch.bfloat16)) for s in
                          _samples(images, texts, owner)])
    out = metric.evaluate(size=12)
    assert out['retrieval/i2t_R@1'] == pytest.approx(100 * 10 / 12, abs=1e-4)
    assert out['retrieval/t2i_R@5'] == pytest.approx(100., abs=1e-4)


# -------------------------------------------------------------------------------------------------------- zero-shot
def test_topk_accuracy_known_logits():
    # label ranks: 0, 1, 3, 5 of 6 classes
    logits = torch.tensor([[9., 1, 2, 3, 4, 5],
                           [5., 9, 1, 2, 3, 4],
                           [1., 2, 9, 8, 6, 7],
                           [6., 5, 4, 3, 2, 1]])
    labels = torch.tensor([0, 0, 4, 5])
    acc = topk_accuracy(logits, labels, (1, 2, 3, 4, 5, 6, 10))
    assert acc == pytest.approx({'top1': 25., 'top2': 50., 'top3': 50., 'top4': 75., 'top5': 75., 'top6': 100.,
                                 'top10': 100.})


def test_mean_per_class_recall_known():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 0, 0])
    # recalls 2/3, 1/2, 0; class 3 absent from labels is left out
    assert mean_per_class_recall(pred, labels, 4) == pytest.approx(100 * (2 / 3 + 1 / 2 + 0) / 3, abs=1e-4)
    # differs from plain accuracy on an unbalanced set
    assert mean_per_class_recall(pred, labels, 4) != pytest.approx(100 * 3 / 6)
    perfect = mean_per_class_recall(labels, labels, 3)
    assert perfect == pytest.approx(100.)


@pytest.fixture(scope='module')
def tiny_model():
    cfg = Config.fromfile(CONFIG).model
    cfg.image_encoder.update(img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    cfg.text_encoder.update(context_length=12, width=32, layers=1, heads=2)
    cfg.embed_dim = 16
    torch.manual_seed(0)
    return MODELS.build(cfg).eval()


def test_zero_shot_prepare_with_tiny_model(tiny_model):
    classes = ['circle', 'square', 'triangle']
    templates = ['a photo of a {}.', 'a drawing of a {}.', '{}']
    metric = METRICS.build(dict(type='ZeroShotAccuracy', context_length=12, topk=(1, 2)))
    assert isinstance(metric, ZeroShotAccuracy)
    metric.dataset_meta = dict(classes=classes, templates=templates)
    metric.prepare(tiny_model)
    clf = metric.classifiers['student']
    assert clf.shape == (3, 16)
    # reference: every prompt in one batch, normalise, average per class, normalise
    tok = CLIPTokenizer(12)
    prompts = [t.format(c) for c in classes for t in templates]
    with torch.no_grad():
        emb = F.normalize(tiny_model.encode_text(tok(prompts)), dim=-1).view(3, 3, 16).mean(1)
    torch.testing.assert_close(clf, F.normalize(emb, dim=-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(clf.norm(dim=-1), torch.ones(3))
    assert not clf.requires_grad
    # class embeddings differ between classes
    assert (clf @ clf.T - torch.eye(3)).abs().max() < 1 - 1e-4

    # images exactly at class embeddings are classified as that class
    results = [dict(image_embeds=clf[c], gt_label=c, img_path=f'{i}.png') for i, c in enumerate((0, 1, 2, 2))]
    metric.process(None, results)
    out = metric.compute_metrics(metric.results)
    assert out['top1'] == pytest.approx(100.) and out['mean_per_class_recall'] == pytest.approx(100.)


def test_zero_shot_compute_metrics_known_answer():
    metric = ZeroShotAccuracy(topk=(1, 2), context_length=8)
    metric.classifiers = {'student': torch.eye(4)}  # class c embedding = e_c: logits are the image embedding itself
    embeds = torch.tensor([[0.9, 0.3, 0.1, 0.0],   # label 0, rank 0
                           [0.1, 0.8, 0.0, 0.5],   # label 1, rank 0
                           [0.2, 0.9, 0.1, 0.0],   # label 0, rank 1
                           [0.7, 0.0, 0.1, 0.2],   # label 3, rank 1
                           [0.9, 0.0, 0.5, 0.1]])  # label 3, rank 3
    labels = [0, 1, 0, 3, 3]
    metric.process(None, [dict(image_embeds=e, gt_label=torch.tensor(l), img_path=f'{i}.png')
                          for i, (e, l) in enumerate(zip(embeds, labels))])
    out = metric.compute_metrics(metric.results)
    assert out['top1'] == pytest.approx(40.) and out['top2'] == pytest.approx(80.)
    # recalls: class 0 1/2, class 1 1/1, class 3 0/2 (class 2 absent)
    assert out['mean_per_class_recall'] == pytest.approx(100 * (0.5 + 1 + 0) / 3, abs=1e-4)


def test_zero_shot_needs_prepare_and_metainfo(tiny_model):
    metric = ZeroShotAccuracy(context_length=12)
    metric.results = [dict(key='a.png', embeds=dict(student=torch.zeros(16)), label=0)]
    with pytest.raises(RuntimeError, match='prepare'):
        metric.compute_metrics(metric.results)
    metric.dataset_meta = dict(classes=['a'])
    with pytest.raises(KeyError, match='templates'):
        metric.prepare(tiny_model)
