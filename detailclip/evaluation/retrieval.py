"""Image-text retrieval recall (I2T and T2I R@K) on Karpathy-style splits."""
from typing import Dict, List, Sequence

import torch

from detailclip.registry import METRICS
from .base import NetworkMetric


def retrieval_recall(image_embeds: torch.Tensor, text_embeds: torch.Tensor, text_to_image: torch.Tensor,
                     ks: Sequence[int] = (1, 5, 10)) -> Dict[str, float]:
    """Recall@K in percent for both directions.

    Args:
        image_embeds (Tensor): (N_img, d) normalised image embeddings.
        text_embeds (Tensor): (N_txt, d) normalised caption embeddings.
        text_to_image (Tensor): (N_txt,) index of each caption's image.
        ks (Sequence[int]): The K values.

    Returns:
        dict: ``i2t_R@K`` (an image counts if any of its captions is in its top K) and ``t2i_R@K`` (a caption
        counts if its image is in its top K), plus their means ``i2t_mean``/``t2i_mean``.
    """
    sim = image_embeds @ text_embeds.T  # (N_img, N_txt)
    own = text_to_image[None, :] == torch.arange(len(image_embeds))[:, None]  # (N_img, N_txt)
    # rank of the best-ranked own caption per image, and of the own image per caption
    i2t_rank = ((sim[:, None, :] > sim[:, :, None]) & own[:, :, None]).sum(-1).masked_fill(~own, len(own[0]))
    i2t_rank = i2t_rank.min(1).values
    t2i_rank = (sim > sim[text_to_image, torch.arange(sim.shape[1])][None, :]).sum(0)
    metrics = {}
    for direction, rank in (('i2t', i2t_rank), ('t2i', t2i_rank)):
        for k in ks:
            metrics[f'{direction}_R@{k}'] = 100. * (rank < k).float().mean().item()
        metrics[f'{direction}_mean'] = sum(metrics[f'{direction}_R@{k}'] for k in ks) / len(ks)
    return metrics


@METRICS.register_module()
class RetrievalRecall(NetworkMetric):
    """I2T/T2I Recall@K (CLIP_benchmark's ``text_retrieval_recall@k``/``image_retrieval_recall@k``).

    Args:
        ks (Sequence[int]): The K values.
        **kwargs: :class:`NetworkMetric` arguments (``network``, ``dataset_name``, ``prefix``, ``collect_device``).
    """

    default_prefix = 'retrieval'
    benchmark_task = 'zeroshot_retrieval'

    def __init__(self, ks: Sequence[int] = (1, 5, 10), **kwargs):
        super().__init__(**kwargs)
        self.ks = tuple(ks)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            self.results.append(dict(key=int(self.sample_key(sample, 'img_id', 'RetrievalRecall')),
                                     images=self.network_fields(sample, 'image_embeds', self.networks),
                                     texts=self.network_fields(sample, 'text_embeds', self.networks)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        results = self.unique(results)
        metrics = {}
        for network in self.networks:
            images = torch.stack([r['images'][network] for r in results])
            texts = [r['texts'][network] for r in results]
            owner = torch.cat([torch.full((len(t),), i) for i, t in enumerate(texts)])
            metrics.update(self.network_names(network, retrieval_recall(images, torch.cat(texts), owner, self.ks)))
        return metrics

    def benchmark_metrics(self, values: Dict[str, float]) -> Dict[str, float]:
        """Fractions in CLIP_benchmark's names: image retrieval = text -> image (T2I), text retrieval = I2T."""
        out = {f'image_retrieval_recall@{k}': values[f't2i_R@{k}'] / 100. for k in self.ks}
        out.update({f'text_retrieval_recall@{k}': values[f'i2t_R@{k}'] / 100. for k in self.ks})
        return out
