"""Zero-shot classification: class embeddings from prompt templates, nearest class by cosine (docs/methods.md 9.1)."""
from typing import Dict, List, Sequence, Union

import torch
import torch.nn.functional as F

from detailclip.datasets.class_lists import zero_shot_preset  # noqa: F401  (part of this package's API)
from detailclip.datasets.tokenizer import CLIPTokenizer
from detailclip.registry import METRICS
from .base import ClassificationMetric

ClassName = Union[str, Sequence[str]]  # one name, or a list of synonyms


def class_prompts(name: ClassName, templates: Sequence[str]) -> List[str]:
    """Every template filled with every synonym of a class (one name counts as one synonym)."""
    synonyms = [name] if isinstance(name, str) else list(name)
    return [t.format(s) for s in synonyms for t in templates]


@torch.no_grad()
def build_zero_shot_classifier(model, classes: Sequence[ClassName], templates: Sequence[str],
                               tokenizer: CLIPTokenizer, device: torch.device,
                               network: str = 'student') -> torch.Tensor:
    """Prompt-ensembled class embeddings (C, d): per class, normalise each prompt's embedding (templates x synonyms),
    average, normalise again (CLIP arXiv 2103.00020, section 3.1.4), with the text tower of ``network``."""
    weights = []
    for name in classes:
        tokens = tokenizer(class_prompts(name, templates)).to(device)
        emb = F.normalize(model.encode_text(tokens, network), dim=-1).mean(0)
        weights.append(F.normalize(emb, dim=-1))
    return torch.stack(weights)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]) -> Dict[str, float]:
    """Top-k accuracies in percent from logits (N, C) and labels (N,)."""
    maxk = min(max(topk), logits.shape[1])
    hits = logits.topk(maxk, dim=1).indices == labels[:, None]
    return {f'top{k}': 100. * hits[:, :k].any(1).float().mean().item() for k in topk}


def mean_per_class_recall(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Mean over the classes present in ``labels`` (N,) of the recall of ``pred`` (N,), in percent."""
    recalls = [(pred[labels == c] == c).float().mean() for c in range(num_classes) if (labels == c).any()]
    return 100. * torch.stack(recalls).mean().item()


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, topk: Sequence[int]) -> Dict[str, float]:
    """Top-k accuracies and mean per-class recall (percent) from logits (N, C) and labels (N,)."""
    metrics = topk_accuracy(logits, labels, topk)
    metrics['mean_per_class_recall'] = mean_per_class_recall(logits.argmax(1), labels, logits.shape[1])
    return metrics


@METRICS.register_module()
class ZeroShotAccuracy(ClassificationMetric):
    """Top-k accuracy and mean per-class recall of zero-shot classification (CLIP_benchmark's ``acc1``/``acc5``/
    ``mean_per_class_recall``). Class names (or synonym lists) and templates come from the dataset's metainfo
    (:class:`ImageFolderClassification` with ``zero_shot_file`` or ``zero_shot_preset``).

    Args:
        topk (Sequence[int]): The k of the top-k accuracies.
        context_length (int): Tokenizer context length of the model's text tower.
        **kwargs: :class:`NetworkMetric` arguments (``network``, ``dataset_name``, ``prefix``, ``collect_device``).
    """

    default_prefix = 'zero-shot'
    benchmark_task = 'zeroshot_classification'
    image_field = 'image_embeds'

    def __init__(self, topk: Sequence[int] = (1, 5), context_length: int = 77, **kwargs):
        super().__init__(**kwargs)
        self.topk = tuple(topk)
        self.tokenizer = CLIPTokenizer(context_length)
        self.classifiers: Dict[str, torch.Tensor] = {}

    def prepare(self, model) -> None:
        """Embed the class prompts with each network's text encoder (called by the loop before each evaluation)."""
        super().prepare(model)
        meta = self.dataset_meta or {}
        if 'classes' not in meta or 'templates' not in meta:
            raise KeyError('ZeroShotAccuracy needs dataset metainfo with "classes" and "templates" '
                           '(ImageFolderClassification provides them from zero_shot_file or zero_shot_preset)')
        device = next(model.parameters()).device
        self.classifiers = {t: build_zero_shot_classifier(model, meta['classes'], meta['templates'], self.tokenizer,
                                                          device, t).cpu() for t in self.networks}

    def prepared(self) -> bool:
        return bool(self.classifiers)

    def classify(self, network: str, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
        return classification_metrics(images @ self.classifiers[network].T, labels, self.topk)

    def benchmark_metrics(self, values: Dict[str, float]) -> Dict[str, float]:
        """``acc<k>`` and ``mean_per_class_recall`` as fractions, like CLIP_benchmark."""
        out = {f'acc{k}': values[f'top{k}'] / 100. for k in self.topk}
        out['mean_per_class_recall'] = values['mean_per_class_recall'] / 100.
        return out
