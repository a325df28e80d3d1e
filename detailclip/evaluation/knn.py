"""k-nearest-neighbour classification of encoder features (the probe of DINO, arXiv 2104.14294)."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather_object
from mmengine.runner import Runner

from detailclip.registry import METRICS
from .base import ClassificationMetric

SIM_DECIMALS = 4


def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor, feats: torch.Tensor, num_classes: int,
                k: int = 20, temperature: float = 0.07) -> torch.Tensor:
    """Class scores (N, C) by similarity-weighted voting of the k nearest training features (DINO's kNN).

    Similarities are rounded to ``SIM_DECIMALS`` decimals and neighbours tied after rounding are taken in bank order,
    so the float noise of a different batch composition (about 1e-7: one process against several, whose shards
    batch the images differently) cannot reorder near-tied neighbours, as it can for a barely trained encoder.

    Args:
        train_feats (Tensor): (M, D) normalised training features.
        train_labels (Tensor): (M,) their labels.
        feats (Tensor): (N, D) normalised query features.
        num_classes (int): C.
        k (int): Neighbours per query.
        temperature (float): Weights are exp(similarity / temperature).
    """
    sim = (feats.double() @ train_feats.double().T).round(decimals=SIM_DECIMALS)  # (N, M)
    idx = sim.sort(dim=1, descending=True, stable=True).indices[:, :min(k, len(train_feats))]  # (N, k)
    weights = (sim.gather(1, idx) / temperature).exp()
    return (F.one_hot(train_labels[idx], num_classes).double() * weights.unsqueeze(-1)).sum(1)


@METRICS.register_module()
class KNNAccuracy(ClassificationMetric):
    """Top-1 accuracy of a kNN classifier on encoder CLS features; the training set is embedded by ``prepare``.

    Each rank embeds its shard of the training set and the shards are all-gathered (duplicates from sampler padding
    dropped by image path), so every rank holds the whole bank.

    Args:
        train_dataloader (dict): Dataloader config of the labelled training images (e.g. the single-object split).
        k (int): Neighbours.
        temperature (float): Vote temperature.
        network (str): ``'student'``, ``'teacher'`` (the teacher's image encoder) or ``'both'``.
        prefix (str, optional): Metric name prefix.
        collect_device (str): Where results are gathered across ranks.
    """

    default_prefix = 'knn'
    image_field = 'image_feats'

    def __init__(self, train_dataloader: dict, k: int = 20, temperature: float = 0.07, network: str = 'student',
                 prefix: Optional[str] = None, collect_device: str = 'cpu'):
        super().__init__(network, prefix=prefix, collect_device=collect_device)
        self.train_loader = Runner.build_dataloader(train_dataloader)
        self.k, self.temperature = k, temperature
        self.banks: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def prepare(self, model) -> None:
        """Embed every training image with each network's current encoder (called by the loop before evaluation)."""
        super().prepare(model)
        local = []
        for batch in self.train_loader:
            for sample in model.test_step(batch):
                local.append(self.labelled_result(sample.to_dict()))
        bank = {r['key']: r for part in all_gather_object(local) for r in part}
        bank = [bank[key] for key in sorted(bank)]
        labels = torch.tensor([r['label'] for r in bank])
        self.banks = {t: (torch.stack([r['images'][t] for r in bank]), labels) for t in self.networks}

    def prepared(self) -> bool:
        return bool(self.banks)

    def classify(self, network: str, images: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
        train_feats, train_labels = self.banks[network]
        num_classes = int(max(train_labels.max(), labels.max())) + 1
        scores = knn_predict(train_feats, train_labels, images, num_classes, self.k, self.temperature)
        return dict(top1=100. * (scores.argmax(1) == labels).float().mean().item())
