"""Masked pixel reconstruction through an MAE decoder."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from detailclip.registry import MODELS
from ..heads.mae_decoder import PixelHead
from ..losses.pixel_loss import PixelReconLoss
from ..maskers.ops import removed_positions, take_rows
from ..ops import patchify
from .base import Objective, select


@MODELS.register_module()
class MAEObjective(Objective):
    """Reconstruct the pixels of removed patches (MAE arXiv 2111.06377; DetailCLIP, docs/methods.md 7.5).

    For each selected student view that has a mask: decode the encoder tokens (same-shaped views in one batch), predict
    every patch's pixels and take :class:`PixelReconLoss` on the removed patches; the loss is the mean over those
    views (DetailCLIP: 1/2 (L(u) + L(v))). The target is the student view itself, i.e. the normalised augmented image
    (Q-D24).
    Publishes the decoder outputs for DetailCLIP's iBOT patch term (so the pretrainer runs this objective before it),
    per student view or None: ``context['decoded_masked']``, the (B, N_rem, D_dec) outputs at the removed positions
    in ascending order (``decoded[:, 1:][mask]`` row by row), or with ``decode_positions='all'``
    ``context['decoded']``, the (B, 1 + N, D_dec) outputs at every position.

    Args:
        decoder: :class:`MAEDecoder` config (``type`` may be omitted); ``in_dim`` must be the encoder width.
        patch_size: Encoder patch side p; checked against each view's size and grid at forward time.
        norm_pix: Standardise each target patch (MAE's norm_pix_loss).
        weight: Weight of ``loss_pixel`` in the total loss.
        views: Student views to reconstruct (all masked ones when None).
        pixel_head_init: ``'xavier'`` (MAE) or ``'default'`` (reference PyTorch default init, Q-D23).
        publish_decoded: Store the decoder outputs in the context.
        decode_positions: Decode the ``'masked'`` (removed) positions only, the only ones the losses read (the
            decoder's last block and the pixel head skip the kept rows), or ``'all'`` of them (the same losses):
            needed with mask-token replacement, which removes no rows, and for an iBOT head that runs on every
            position (``IBOTObjective(patch_positions='all')``).
    """

    def __init__(self, decoder: dict, patch_size: int = 16, norm_pix: bool = True, weight: float = 1.0,
                 views: Optional[Sequence[int]] = None, pixel_head_init: str = 'xavier', publish_decoded: bool = True,
                 decode_positions: str = 'masked'):
        super().__init__()
        if decode_positions not in ('masked', 'all'):
            raise ValueError(f'unknown decode_positions {decode_positions!r}: use "masked" or "all"')
        self.decoder = MODELS.build({'type': 'MAEDecoder', **decoder})
        self.pixel_head = PixelHead(self.decoder.width, patch_size, init=pixel_head_init)
        self.loss = PixelReconLoss(norm_pix=norm_pix)
        self.patch_size = patch_size
        self.weight = weight
        self.views = None if views is None else list(views)
        self.publish_decoded = publish_decoded
        self.decode_positions = decode_positions

    @property
    def provides(self) -> Tuple[str, ...]:
        if not self.publish_decoded:
            return ()
        return ('decoded_masked', ) if self.decode_positions == 'masked' else ('decoded', )

    def forward(self, context: dict, teacher_copies: dict) -> Dict[str, torch.Tensor]:
        masked_only = self.decode_positions == 'masked'
        decoded = self.decode(context, removed_only=masked_only)
        losses = [self._pixel_loss(context, v, out, masked_only) for v, out in enumerate(decoded) if out is not None]
        if self.publish_decoded:
            context[self.provides[0]] = decoded
        return dict(loss_pixel=self.weight * torch.stack(losses).mean())

    def _pixel_loss(self, context: dict, view: int, decoded: torch.Tensor, masked_only: bool) -> torch.Tensor:
        """:class:`PixelReconLoss` of student view ``view`` from its decoder output: (B, 1 + N, D_dec), or with
        ``masked_only`` (B, N_rem, D_dec) at the removed positions."""
        target, mask = self.target(context, view), context['masks'][view]
        if not masked_only:
            return self.loss(self.pixel_head(decoded[:, 1:]), target, mask)
        rows = removed_positions(context['ids_keep'][view], mask.shape[1])
        return self.loss(self.pixel_head(decoded), take_rows(target, rows))

    def decode(self, context: dict, removed_only: bool = False) -> List[Optional[torch.Tensor]]:
        """Per student view, the decoder output (B, 1 + N, D_dec) of each selected masked view (same-shaped views in
        one batch), or with ``removed_only`` its (B, N_rem, D_dec) rows at the removed positions (ascending); None
        for the other views."""
        decoded: List[Optional[torch.Tensor]] = [None] * len(context['views'])
        views = [v for v in select(range(len(context['views'])), self.views) if context['masks'][v] is not None]
        if not views:
            raise ValueError('MAEObjective found no masked student view: configure a masker for its views')
        outs = self.decoder.forward_views(select(context['image_tokens'], views), select(context['ids_keep'], views),
                                          select(context['grid_sizes'], views), removed_only=removed_only)
        for v, out in zip(views, outs):
            decoded[v] = out
        return decoded

    def reconstruct(self, context: dict, view: int) -> torch.Tensor:
        """Predicted patches (B, N, p*p*3) of student view ``view``, in the space the loss compares them in: the
        :meth:`target` patches, standardised per patch when ``norm_pix``."""
        decoded = self.decode(context)[view]
        if decoded is None:
            raise ValueError(f'MAEObjective does not reconstruct student view {view}: it is unmasked or not in '
                             f'views={self.views}')
        return self.pixel_head(decoded[:, 1:])

    def target(self, context: dict, view: int) -> torch.Tensor:
        """Patches (B, N, p*p*3) of student view ``view`` (the normalised image), before ``norm_pix``."""
        return patchify(context['views'][view], self._patch_size(context, view))

    def _patch_size(self, context: dict, view: int) -> int:
        """The view's patch side (image width over grid width), which must match the pixel head's."""
        patch = context['views'][view].shape[-1] // context['grid_sizes'][view][1]
        if patch != self.patch_size:
            raise ValueError(f'view {view} has patch size {patch} but MAEObjective was built with patch_size='
                             f'{self.patch_size}: set it to the encoder patch size')
        return patch
