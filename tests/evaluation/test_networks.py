"""Student and teacher: one encode path with a ``network`` argument, both networks' metrics logged side by side."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import BaseDataElement

from detailclip.datasets.tokenizer import CLIPTokenizer
from detailclip.evaluation import KNNAccuracy, RetrievalRecall, ZeroShotAccuracy
from detailclip.evaluation.zero_shot import build_zero_shot_classifier, class_prompts
from detailclip.registry import MODELS
from detailclip.testing import TINY_CLIP

CTX = 12
WHOLE_TEACHER = ['image_encoder', 'image_projection', 'text_encoder', 'text_projection']


def _model(teacher_modules=None):
    """A tiny CLIP; with ``teacher_modules`` an EMA teacher of those parts, then the student moved away from it."""
    cfg = Config.fromfile(TINY_CLIP).model
    cfg.image_encoder.update(img_size=16, patch_size=8, embed_dim=32, depth=1, num_heads=2, stem='patch')
    cfg.text_encoder.update(context_length=CTX, width=32, layers=1, heads=2)
    cfg.embed_dim = 16
    if teacher_modules is not None:
        cfg.teacher = dict(modules=teacher_modules)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    with torch.no_grad():  # student != teacher, as after training steps
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def _tokens(texts):
    return CLIPTokenizer(CTX)(texts)


def test_encoders_use_the_teachers_copies():
    model = _model(WHOLE_TEACHER)
    images, tokens = torch.randn(3, 3, 16, 16), _tokens(['a red circle', 'a blue square'])
    copy_of = model.teacher.copy_of
    with torch.no_grad():
        teacher_text = model.encode_text(tokens, network='teacher')
        teacher_image = model.encode_image(images, network='teacher')
        torch.testing.assert_close(teacher_text, copy_of('text_projection')(copy_of('text_encoder')(tokens)))
        cls = copy_of('image_encoder').forward_encoder(images)['tokens'][:, 0]
        torch.testing.assert_close(teacher_image, copy_of('image_projection')(cls))
        torch.testing.assert_close(model.encode_text(tokens), model.text_projection(model.text_encoder(tokens)))
        assert not torch.allclose(teacher_text, model.encode_text(tokens))


def test_missing_teacher_copy_names_the_config_fix():
    with pytest.raises(ValueError, match=r"model\.teacher\.modules"):
        _model().encode_image(torch.randn(1, 3, 16, 16), network='teacher')
    dino_like = _model(['image_encoder'])  # a teacher without the text tower and projections
    dino_like.request_eval_networks(['teacher'])
    metric = ZeroShotAccuracy(context_length=CTX, network='teacher')
    metric.dataset_meta = dict(classes=['circle'], templates=['{}'])
    with pytest.raises(ValueError, match="'text_projection'.*model.teacher.modules"):
        metric.prepare(dino_like)
    with pytest.raises(ValueError, match='network'):
        ZeroShotAccuracy(network='ema')
    with pytest.raises(ValueError, match='unknown network'):
        dino_like.submodule('image_encoder', 'ema')


def test_predict_attaches_each_requested_network():
    model = _model(WHOLE_TEACHER)
    images = torch.randn(2, 3, 16, 16)
    samples = [BaseDataElement(caption_tokens=_tokens(['a', 'b c'])), BaseDataElement(caption_tokens=_tokens(['d']))]
    model.predict(dict(views=[images]), samples)
    assert 'teacher_image_embeds' not in samples[0]  # only the student until a metric asks for the teacher
    model.request_eval_networks(['teacher'])
    with torch.no_grad():
        model.predict(dict(views=[images]), samples)
        teacher = F.normalize(model.encode_image(images, 'teacher'), dim=-1)
        teacher_text = F.normalize(model.encode_text(samples[0].caption_tokens, 'teacher'), dim=-1)
    torch.testing.assert_close(torch.stack([s.teacher_image_embeds for s in samples]), teacher)
    torch.testing.assert_close(samples[0].teacher_text_embeds, teacher_text)
    assert samples[1].teacher_text_embeds.shape == (1, 16) and samples[0].teacher_image_feats.shape == (32, )
    assert not torch.allclose(samples[0].image_embeds, samples[0].teacher_image_embeds)
    # a teacher with the image encoder only: teacher kNN features, no teacher embeddings
    dino_like = _model(['image_encoder'])
    dino_like.request_eval_networks(['teacher'])
    samples = [BaseDataElement(caption_tokens=_tokens(['a']))]
    dino_like.predict(dict(views=[images[:1]]), samples)
    assert 'teacher_image_feats' in samples[0] and 'teacher_image_embeds' not in samples[0]


def test_zero_shot_both_networks():
    model = _model(WHOLE_TEACHER)
    classes, templates = ['circle', ['square', 'box']], ['a photo of a {}.', '{}']
    metric = ZeroShotAccuracy(context_length=CTX, topk=(1, ), network='both')
    metric.dataset_meta = dict(classes=classes, templates=templates)
    metric.prepare(model)
    assert model.eval_networks == ['student', 'teacher']
    tok = CLIPTokenizer(CTX)
    with torch.no_grad():
        for network in ('student', 'teacher'):
            prompts = [tok(class_prompts(c, templates)) for c in classes]
            expected = torch.stack([F.normalize(F.normalize(model.encode_text(p, network), dim=-1).mean(0), dim=-1)
                                    for p in prompts])
            torch.testing.assert_close(metric.classifiers[network], expected)
    # images at the teacher's class embeddings: the teacher is right everywhere, the student's embeddings put elsewhere
    teacher, student = metric.classifiers['teacher'], -metric.classifiers['student']
    metric.process(None, [dict(img_path=f'{i}.png', gt_label=c, image_embeds=student[c],
                               teacher_image_embeds=teacher[c]) for i, c in enumerate([0, 1, 1])])
    out = metric.evaluate(3)
    assert out['zero-shot/teacher/top1'] == pytest.approx(100.)
    assert out['zero-shot/teacher/mean_per_class_recall'] == 100.
    assert out['zero-shot/top1'] == pytest.approx(0.)
    assert set(out) == {'zero-shot/top1', 'zero-shot/mean_per_class_recall', 'zero-shot/teacher/top1',
                        'zero-shot/teacher/mean_per_class_recall'}


def test_synonyms_average_over_templates_and_synonyms():
    model = _model()
    tok = CLIPTokenizer(CTX)
    templates = ['a {}.', 'art of the {}.', 'itap of a {}.']
    clf = build_zero_shot_classifier(model, [['sofa', 'couch'], 'lamp'], templates, tok, torch.device('cpu'))
    prompts = [t.format(s) for s in ('sofa', 'couch') for t in templates]
    assert class_prompts(['sofa', 'couch'], templates) == prompts
    with torch.no_grad():
        emb = F.normalize(model.encode_text(tok(prompts)), dim=-1).mean(0)
    torch.testing.assert_close(clf[0], F.normalize(emb, dim=-1))


def test_retrieval_both_networks_and_benchmark_names():
    eye = torch.eye(4)
    metric = RetrievalRecall(ks=(1, 5), network='both')
    flipped = eye[[1, 0, 2, 3]]  # the teacher swaps the captions of images 0 and 1
    metric.process(None, [dict(img_id=i, image_embeds=eye[i], text_embeds=eye[i:i + 1], teacher_image_embeds=eye[i],
                               teacher_text_embeds=flipped[i:i + 1]) for i in range(4)])
    out = metric.evaluate(4)
    assert out['retrieval/i2t_R@1'] == 100. and out['retrieval/teacher/i2t_R@1'] == 50.
    per_network = metric.per_network(out)
    assert set(per_network) == {'student', 'teacher'} and per_network['teacher']['t2i_R@1'] == 50.
    assert metric.benchmark_metrics(per_network['teacher']) == {
        'image_retrieval_recall@1': 0.5, 'image_retrieval_recall@5': 1.0,
        'text_retrieval_recall@1': 0.5, 'text_retrieval_recall@5': 1.0}


def test_knn_both_networks(tiny_world):
    init_default_scope('detailclip')
    model = _model(['image_encoder'])
    pipeline = [dict(type='LoadImageRGB'),
                dict(type='MultiView', views=[[dict(type='Resize', size=16), dict(type='CenterCrop', size=16)]]),
                dict(type='PackImageText', meta_keys=('img_path', 'gt_label'))]
    loader = dict(batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                  dataset=dict(type='ImageFolderClassification', data_root=tiny_world, split='classification/train',
                               zero_shot_file='zero_shot.json', pipeline=pipeline))
    metric = KNNAccuracy(loader, k=3, network='both')
    metric.prepare(model)
    feats, labels = metric.banks['teacher']
    assert feats.shape == (len(metric.train_loader.dataset), 32) and labels.shape == feats.shape[:1]
    assert not torch.allclose(feats, metric.banks['student'][0])
    # the training images themselves as queries: each one's nearest neighbour is itself
    batch = next(iter(metric.train_loader))
    metric.process(batch, [s.to_dict() for s in model.test_step(batch)])
    out = metric.evaluate(8)
    assert set(out) == {'knn/top1', 'knn/teacher/top1'}
