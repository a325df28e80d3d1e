"""k-nearest-neighbour classification of encoder features (the probe of DINO, arXiv 2104.14294)."""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.runner import Runner

from detailclip.registry import METRICS


def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor, feats: torch.Tensor, num_classes: int,
                k: int = 20, temperature: float = 0.07) -> torch.Tensor:
    """Class scores (N, C) by similarity-weighted voting of the k nearest training features (DINO's kNN).

    Args:
        train_feats (Tensor): (M, D) normalised training features.
        train_labels (Tensor): (M,) their labels.
        feats (Tensor): (N, D) normalised query features.
        num_classes (int): C.
        k (int): Neighbours per query.
        temperature (float): Weights are exp(similarity / temperature).
    """
    sim, idx = (feats @ train_feats.T).topk(min(k, len(train_feats)), dim=1)  # (N, k)
    votes = F.one_hot(train_labels[idx], num_classes).float() * (sim / temperature).exp().unsqueeze(-1)
    return votes.sum(1)


@METRICS.register_module()
class KNNAccuracy(BaseMetric):
    """Top-1 accuracy of a kNN classifier on encoder CLS features; the training set is embedded by ``prepare``.

    Args:
        train_dataloader (dict): Dataloader config of the labelled training images (e.g. the single-object split).
        k (int): Neighbours.
        temperature (float): Vote temperature.
        prefix (str): Metric name prefix.
        collect_device (str): Where results are gathered across ranks.
    """

    default_prefix = 'knn'

    def __init__(self, train_dataloader: dict, k: int = 20, temperature: float = 0.07, prefix: str = None,
                 collect_device: str = 'cpu'):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.train_loader = Runner.build_dataloader(train_dataloader)
        self.k, self.temperature = k, temperature
        self.bank = None

    @torch.no_grad()
    def prepare(self, model) -> None:
        """Embed every training image with the current encoder (called by the loop before each evaluation)."""
        feats, labels = [], []
        for batch in self.train_loader:
            for sample in model.test_step(batch):
                feats.append(sample.image_feats.float().cpu())
                labels.append(int(sample.gt_label))
        self.bank = torch.stack(feats), torch.tensor(labels)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            self.results.append(dict(feat=sample['image_feats'].float().cpu(), label=int(sample['gt_label'])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if self.bank is None:
            raise RuntimeError('KNNAccuracy.prepare(model) was not called: use MultiValLoop/MultiTestLoop')
        train_feats, train_labels = self.bank
        num_classes = int(max(train_labels.max(), max(r['label'] for r in results))) + 1
        scores = knn_predict(train_feats, train_labels, torch.stack([r['feat'] for r in results]), num_classes,
                             self.k, self.temperature)
        labels = torch.tensor([r['label'] for r in results])
        return dict(top1=100. * (scores.argmax(1) == labels).float().mean().item())
