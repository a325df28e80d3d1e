"""Image-only self-supervised losses of SLIP and A-CLIP: SimCLR's NT-Xent and BYOL's cosine regression."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detailclip.registry import MODELS
from detailclip.utils.dist import gather_features, get_rank


@MODELS.register_module()
class SimCLRLoss(nn.Module):
    """NT-Xent of SimCLR (Chen et al., arXiv 2002.05709) as SLIP implements it (arXiv 2112.12750, docs/methods.md 4).

    With q_a, q_b the normalised local embeddings of two views (B, d) and k_a, k_b their W*B gathered copies, the
    row i of view a scores ``[q_a k_b^T | q_a k_a^T] / tau`` (B, 2*W*B) with its own column ``k_a[r*B + i]`` set to
    -1e9, label ``r*B + i`` (the positive ``k_b[r*B + i]``); view b symmetrically. The loss is the mean of the two
    views' cross-entropies, i.e. the mean over all 2*B local rows. Gathering keeps gradients (as SLIP does), so
    under DDP the gradient is that of the single-process loss on the global batch.

    Args:
        temperature (float): tau.
    """

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, embeds_a: Tensor, embeds_b: Tensor) -> Tuple[Tensor, Tensor]:
        """Compute the loss and SLIP's ``ssl_acc``.

        Args:
            embeds_a (Tensor): (B, d) embeddings of the first view; need not be normalised.
            embeds_b (Tensor): (B, d) embeddings of the second view, row i paired with row i of ``embeds_a``.

        Returns:
            tuple[Tensor, Tensor]: () the loss, and () ssl_acc in percent (detached): the share of view-a rows whose
            argmax over the 2*W*B - 1 candidates is their positive.
        """
        q = F.normalize(torch.stack([embeds_a, embeds_b], dim=1), dim=-1)  # (B, 2, d)
        keys = gather_features(q, with_grad=True)  # (W*B, 2, d): one collective for both views
        batch, total = q.shape[0], keys.shape[0]
        labels = get_rank() * batch + torch.arange(batch, device=q.device)  # (B,)
        # Candidates for view v: the other view's keys (positive at ``labels``), then v's own keys.
        logits = torch.stack([q[:, v] @ torch.cat([keys[:, 1 - v], keys[:, v]]).t() for v in (0, 1)])
        self_pair = torch.arange(2 * total, device=q.device) == (total + labels)[:, None]  # (B, 2*W*B)
        # at least fp32, so that -1e9 is representable under fp16 autocast
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) / self.temperature
        logits = logits.masked_fill(self_pair, -1e9)  # (2, B, 2*W*B)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.repeat(2))
        with torch.no_grad():
            ssl_acc = (logits[0].argmax(dim=-1) == labels).float().mean() * 100
        return loss, ssl_acc


@MODELS.register_module()
class BYOLLoss(nn.Module):
    """BYOL's regression loss (arXiv 2006.07733) as A-CLIP uses it (arXiv 2212.08653; docs/methods.md 6.5).

    ``loss = 1/(V*B) sum_v sum_b [2 - 2 cos(p_{v,b}, sg(z_b))]``: every student view's prediction regresses the
    one teacher target of its sample, which gets no gradient. Not symmetrised (A-CLIP's teacher sees one view).
    """

    def forward(self, preds: Tensor, target: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            preds (Tensor): (V, B, d) student predictions of V views, or (B, d) for one view.
            target (Tensor): (B, d) teacher projections, broadcast over the views; detached here.

        Returns:
            Tensor: () the mean loss, in [0, 4].
        """
        if preds.shape[-2:] != target.shape or target.dim() != 2:
            raise ValueError(f'expected preds (V, B, d) or (B, d) and target (B, d), got '
                             f'{tuple(preds.shape)} and {tuple(target.shape)}')
        cos = (F.normalize(preds, dim=-1) * F.normalize(target.detach(), dim=-1)).sum(dim=-1)  # (V, B) or (B,)
        return (2 - 2 * cos).mean()
