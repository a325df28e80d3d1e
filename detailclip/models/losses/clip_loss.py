"""Symmetric CLIP InfoNCE over all ranks, for one or several image views sharing one text batch."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detailclip.registry import MODELS
from detailclip.utils.dist import gather_features, get_rank


@MODELS.register_module()
class CLIPInfoNCELoss(nn.Module):
    """CLIP contrastive loss (Radford et al., 2021, arXiv 2103.00020) with cross-rank negatives.

    Each rank scores its B local rows against the W*B gathered rows of the other modality
    (logits (B, W*B), labels ``r*B + i``). For V image views of the same captions (A-CLIP,
    arXiv 2212.08653; DetailCLIP, arXiv 2409.06809) the text is gathered once and
    ``loss = sum_v w_v * 1/2 [CE(s zI_v ZT^T, y) + CE(s zT ZI_v^T, y)]``.

    Args:
        gather_with_grad (bool): gradient mode of the gathered embeddings, see
            :func:`detailclip.utils.dist.gather_features`. True gives the exact gradient of the
            full-batch loss under DDP; False reproduces SLIP (query-side gradient only).
        view_weights (Sequence[float], optional): w_v, one per view. Defaults to 1/V each.
    """

    def __init__(self, gather_with_grad: bool = True, view_weights: Optional[Sequence[float]] = None):
        super().__init__()
        self.gather_with_grad = gather_with_grad
        self.view_weights = None if view_weights is None else tuple(float(w) for w in view_weights)

    def forward(self, image_embeds: Tensor, text_embeds: Tensor,
                logit_scale: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Compute the loss, the image->text accuracy of the last view and the per-view terms.

        Args:
            image_embeds (Tensor): (V, B, d) image embeddings of V views, or (B, d) for one view;
                need not be normalised.
            text_embeds (Tensor): (B, d) text embeddings; need not be normalised.
            logit_scale (Tensor): () the multiplier s = exp(tau'), already exponentiated.

        Returns:
            tuple[Tensor, Tensor, Tensor]: () the weighted loss; () clip_acc in percent (detached), the share
            of local rows whose image->text argmax over the W*B texts is their own caption, last view; (V,) the
            unweighted per-view terms (detached, for logging: the reference logs contra_loss_1/2).
        """
        if image_embeds.dim() == 2:
            image_embeds = image_embeds.unsqueeze(0)
        weights = self._weights(image_embeds, text_embeds)
        batch = image_embeds.shape[1]

        z_img = F.normalize(image_embeds, dim=-1)  # (V, B, d)
        z_txt = F.normalize(text_embeds, dim=-1)  # (B, d)
        # Views are packed as (B, V, d) so one collective gathers them all.
        all_img = gather_features(z_img.transpose(0, 1), with_grad=self.gather_with_grad)  # (W*B, V, d)
        all_txt = gather_features(z_txt, with_grad=self.gather_with_grad)  # (W*B, d)

        logits_i2t = logit_scale * z_img @ all_txt.t()  # (V, B, W*B)
        logits_t2i = logit_scale * torch.einsum('bd,nvd->vbn', z_txt, all_img)  # (V, B, W*B)
        labels = get_rank() * batch + torch.arange(batch, device=z_txt.device)  # (B,)

        per_view = 0.5 * (self._view_ce(logits_i2t, labels) + self._view_ce(logits_t2i, labels))  # (V,)
        # Python-float weights: no host-to-device copy per step.
        loss = sum(w * term for w, term in zip(weights, per_view.unbind(0)))
        with torch.no_grad():
            clip_acc = (logits_i2t[-1].argmax(dim=-1) == labels).float().mean() * 100
        return loss, clip_acc, per_view.detach()

    def _weights(self, image_embeds: Tensor, text_embeds: Tensor) -> Tuple[float, ...]:
        """Check shapes and return w_v for V = ``image_embeds.shape[0]`` views."""
        if image_embeds.dim() != 3 or text_embeds.dim() != 2 or image_embeds.shape[1:] != text_embeds.shape:
            raise ValueError(f'expected image_embeds (V, B, d) and text_embeds (B, d), got '
                             f'{tuple(image_embeds.shape)} and {tuple(text_embeds.shape)}')
        num_views = image_embeds.shape[0]
        if self.view_weights is None:
            return (1.0 / num_views, ) * num_views
        if len(self.view_weights) != num_views:
            raise ValueError(f'{len(self.view_weights)} view_weights for {num_views} views')
        return self.view_weights

    @staticmethod
    def _view_ce(logits: Tensor, labels: Tensor) -> Tensor:
        """Per-view cross-entropy: logits (V, B, W*B), labels (B,) -> (V,) means over the B rows."""
        num_views, batch = logits.shape[:2]
        ce = F.cross_entropy(logits.flatten(0, 1), labels.repeat(num_views), reduction='none')
        return ce.view(num_views, batch).mean(dim=1)
