"""Both evaluators run on every rank of a real 2-process gloo group; the gathered numbers equal one process's exactly,
whatever the sharding (MMEngine's DefaultSampler pads the odd-sized set with a duplicate)."""
import functools
import os

import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import DefaultSampler

from detailclip.evaluation import RetrievalRecall, ZeroShotAccuracy, retrieval_recall
from detailclip.evaluation.zero_shot import classification_metrics
from detailclip.testing import run_gloo

N, NUM_CLASSES, DIM, WORLD = 13, 5, 8, 2


def _data():
    """Zero-shot samples and retrieval samples (1-3 captions per image), student and teacher, fixed seed."""
    gen = torch.Generator().manual_seed(0)

    def unit(*shape):
        return F.normalize(torch.randn(*shape, generator=gen), dim=-1)

    classifiers = dict(student=unit(NUM_CLASSES, DIM), teacher=unit(NUM_CLASSES, DIM))
    labels = torch.randint(NUM_CLASSES, (N, ), generator=gen)
    zero_shot = [dict(img_path=f'img{i:02d}.png', gt_label=int(labels[i]),
                      image_embeds=F.normalize(classifiers['student'][labels[i]] + unit(DIM), dim=-1),
                      teacher_image_embeds=unit(DIM)) for i in range(N)]
    images = unit(N, DIM)
    retrieval = []
    for i in range(N):
        caps = 1 + i % 3
        retrieval.append(dict(img_id=i, image_embeds=images[i], teacher_image_embeds=unit(DIM),
                              text_embeds=F.normalize(images[i] + unit(caps, DIM), dim=-1),
                              teacher_text_embeds=unit(caps, DIM)))
    return classifiers, zero_shot, retrieval


def _worker(rank, shuffle, folder):
    """One rank of the gloo group; MMEngine's CPU collection writes its parts under the working directory."""
    os.chdir(folder)
    return _evaluate(shuffle)


def _evaluate(shuffle):
    """Both metrics over this process's DefaultSampler shard (in batches of 2), gathered."""
    classifiers, zero_shot, retrieval = _data()
    sampler = DefaultSampler(list(range(N)), shuffle=shuffle, seed=3)
    indices = list(sampler)
    zs = ZeroShotAccuracy(topk=(1, 3), context_length=8, network='both')
    zs.classifiers = classifiers
    rr = RetrievalRecall(network='both')
    for start in range(0, len(indices), 2):
        batch = indices[start:start + 2]
        zs.process(None, [zero_shot[i] for i in batch])
        rr.process(None, [retrieval[i] for i in batch])
    return dict(indices=indices, **zs.evaluate(N), **rr.evaluate(N))


def _expected():
    """Plain single-process computation on the whole set, no metric class involved."""
    classifiers, zero_shot, retrieval = _data()
    labels = torch.tensor([s['gt_label'] for s in zero_shot])
    out = {}
    for network, head in (('student', ''), ('teacher', 'teacher/')):
        field = 'image_embeds' if network == 'student' else 'teacher_image_embeds'
        logits = torch.stack([s[field] for s in zero_shot]) @ classifiers[network].T
        out.update({f'zero-shot/{head}{k}': v for k, v in classification_metrics(logits, labels, (1, 3)).items()})
        texts = [s['text_embeds' if network == 'student' else 'teacher_text_embeds'] for s in retrieval]
        owner = torch.cat([torch.full((len(t), ), i) for i, t in enumerate(texts)])
        images = torch.stack([s[field] for s in retrieval])
        out.update({f'retrieval/{head}{k}': v for k, v in retrieval_recall(images, torch.cat(texts), owner).items()})
    return out


@pytest.mark.dist
@pytest.mark.parametrize('shuffle', [False, True])
def test_two_ranks_equal_one_process(tmp_path, shuffle):
    ranks = run_gloo(functools.partial(_worker, shuffle=shuffle, folder=str(tmp_path)), WORLD, tmp_path)
    single = _evaluate(shuffle)  # no process group: world size 1, the whole set
    assert sorted(single.pop('indices')) == list(range(N))
    shards = [r.pop('indices') for r in ranks]
    assert len(shards[0]) == len(shards[1]) == 7 and len(set(shards[0] + shards[1])) == N  # one padded duplicate
    assert ranks[0] == ranks[1] == single  # exact, every rank gets the numbers
    assert single == pytest.approx(_expected(), abs=1e-9)
    assert {'zero-shot/top3', 'zero-shot/teacher/mean_per_class_recall', 'retrieval/teacher/t2i_R@10'} <= set(single)


def test_missing_sample_key_names_the_pipeline_fix():
    metric = ZeroShotAccuracy(context_length=8)
    with pytest.raises(KeyError, match='meta_keys of PackImageText'):
        metric.process(None, [dict(gt_label=0, image_embeds=torch.zeros(2))])
