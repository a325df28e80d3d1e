"""Zero-shot classification: class embeddings from prompt templates, then nearest class by cosine."""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from detailclip.datasets.tokenizer import CLIPTokenizer
from detailclip.registry import METRICS


@torch.no_grad()
def build_zero_shot_classifier(model, classes: Sequence[str], templates: Sequence[str],
                               tokenizer: CLIPTokenizer, device: torch.device) -> torch.Tensor:
    """Prompt-ensembled class embeddings (C, d): per class, normalise each template's embedding, average,
    normalise again (CLIP arXiv 2103.00020, section 3.1.4)."""
    weights = []
    for name in classes:
        tokens = tokenizer([t.format(name) for t in templates]).to(device)
        emb = F.normalize(model.encode_text(tokens), dim=-1).mean(0)
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


@METRICS.register_module()
class ZeroShotAccuracy(BaseMetric):
    """Top-k accuracy and mean per-class recall of zero-shot classification (CLIP_benchmark's ``acc1``/``acc5``/
    ``mean_per_class_recall``). Class names and templates come from the dataset's metainfo.

    Args:
        topk (Sequence[int]): The k of the top-k accuracies.
        context_length (int): Tokenizer context length of the model's text tower.
        prefix (str): Metric name prefix.
        collect_device (str): Where results are gathered across ranks.
    """

    default_prefix = 'zero-shot'

    def __init__(self, topk: Sequence[int] = (1, 5), context_length: int = 77, prefix: str = None,
                 collect_device: str = 'cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(topk)
        self.tokenizer = CLIPTokenizer(context_length)
        self.classifier = None

    def prepare(self, model) -> None:
        """Embed the class prompts with the current text tower (called by the loop before each evaluation)."""
        meta = self.dataset_meta or {}
        if 'classes' not in meta or 'templates' not in meta:
            raise KeyError('ZeroShotAccuracy needs dataset metainfo with "classes" and "templates" '
                           '(ImageFolderClassification provides them from zero_shot_file)')
        device = next(model.parameters()).device
        self.classifier = build_zero_shot_classifier(model, meta['classes'], meta['templates'], self.tokenizer,
                                                     device).cpu()

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            self.results.append(dict(embed=sample['image_embeds'].float().cpu(), label=int(sample['gt_label'])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if self.classifier is None:
            raise RuntimeError('ZeroShotAccuracy.prepare(model) was not called: use MultiValLoop/MultiTestLoop')
        embeds = torch.stack([r['embed'] for r in results])
        labels = torch.tensor([r['label'] for r in results])
        logits = embeds @ self.classifier.T
        metrics = topk_accuracy(logits, labels, self.topk)
        metrics['mean_per_class_recall'] = mean_per_class_recall(logits.argmax(1), labels, logits.shape[1])
        return metrics
