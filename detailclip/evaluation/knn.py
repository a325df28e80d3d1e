"""k-nearest-neighbour classification of encoder features (the probe of DINO, arXiv 2104.14294)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import all_gather_object
from mmengine.runner import Runner

from detailclip.registry import METRICS
from .base import TowerMetric


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
class KNNAccuracy(TowerMetric):
    """Top-1 accuracy of a kNN classifier on encoder CLS features; the training set is embedded by ``prepare``.

    Each rank embeds its shard of the training set and the shards are all-gathered (duplicates from sampler padding
    dropped by image path), so every rank holds the whole bank.

    Args:
        train_dataloader (dict): Dataloader config of the labelled training images (e.g. the single-object split).
        k (int): Neighbours.
        temperature (float): Vote temperature.
        tower (str): ``'student'``, ``'ema'`` (the teacher's image encoder) or ``'both'``.
        prefix (str, optional): Metric name prefix.
        collect_device (str): Where results are gathered across ranks.
    """

    default_prefix = 'knn'

    def __init__(self, train_dataloader: dict, k: int = 20, temperature: float = 0.07, tower: str = 'student',
                 prefix: Optional[str] = None, collect_device: str = 'cpu'):
        super().__init__(tower, prefix=prefix, collect_device=collect_device)
        self.train_loader = Runner.build_dataloader(train_dataloader)
        self.k, self.temperature = k, temperature
        self.banks: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def prepare(self, model) -> None:
        """Embed every training image with each tower's current encoder (called by the loop before evaluation)."""
        super().prepare(model)
        local = []
        for batch in self.train_loader:
            for sample in model.test_step(batch):
                sample = sample.to_dict()
                local.append(dict(key=self.sample_key(sample, 'img_path', 'KNNAccuracy'), label=int(sample['gt_label']),
                                  feats=self.tower_fields(sample, 'image_feats', self.towers)))
        bank = {r['key']: r for part in all_gather_object(local) for r in part}
        bank = [bank[key] for key in sorted(bank)]
        labels = torch.tensor([r['label'] for r in bank])
        self.banks = {t: (torch.stack([r['feats'][t] for r in bank]), labels) for t in self.towers}

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            self.results.append(dict(key=self.sample_key(sample, 'img_path', 'KNNAccuracy'),
                                     label=int(sample['gt_label']),
                                     feats=self.tower_fields(sample, 'image_feats', self.towers)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if not self.banks:
            raise RuntimeError('KNNAccuracy.prepare(model) was not called: use MultiValLoop/MultiTestLoop')
        results = self.unique(results)
        labels = torch.tensor([r['label'] for r in results])
        metrics = {}
        for tower in self.towers:
            train_feats, train_labels = self.banks[tower]
            num_classes = int(max(train_labels.max(), labels.max())) + 1
            scores = knn_predict(train_feats, train_labels, torch.stack([r['feats'][tower] for r in results]),
                                 num_classes, self.k, self.temperature)
            top1 = 100. * (scores.argmax(1) == labels).float().mean().item()
            metrics.update(self.tower_names(tower, dict(top1=top1)))
        return metrics
