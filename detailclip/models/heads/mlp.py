"""MLP heads of the SSL objectives: SLIP's SimCLR MLP, A-CLIP's BYOL projector and predictor (docs/methods.md 6.2)."""
from typing import Optional

from torch import nn

from detailclip.registry import MODELS
from ..layers import AllReduceBatchNorm1d

_ACTIVATIONS = dict(relu=nn.ReLU, gelu=nn.GELU)


@MODELS.register_module()
class MLPHead(nn.Sequential):
    """Linear layers with BatchNorm and an activation between them (SimCLR arXiv 2002.05709, BYOL 2006.07733).

    Layer i is ``Linear -> [BN] -> act`` for i < ``num_layers`` - 1; the last one is ``Linear [-> BN]``. BN is
    :class:`AllReduceBatchNorm1d`, whose statistics span all ranks as the references' SyncBatchNorm does.

    =====================  ==========================================================================
    SLIP SimCLR MLP        ``MLPHead(D, 4096, 256, num_layers=3)`` (biases on)
    A-CLIP BYOL projector  ``MLPHead(D, 4096, 256, num_layers=2, bias=False)``
    A-CLIP BYOL predictor  ``MLPHead(256, 4096, 256, num_layers=2, bias=False)``
    =====================  ==========================================================================

    Parameters keep PyTorch's default initialisation, as in both references. Submodules are indexed
    (``0.weight``, ``1.running_mean``, ...), the ``nn.Sequential`` layout of A-CLIP's heads.

    Args:
        in_dim (int): Input width.
        hidden_dim (int): Width of every hidden layer.
        out_dim (int): Output width.
        num_layers (int): Number of linear layers (>= 1).
        bias (bool): Biases on the linear layers.
        norm (str, optional): ``'bn'`` (all-reduce BatchNorm) after each hidden linear layer, or None.
        last_norm (bool): Also normalise the output (affine-free BN, as in SimCLR v1); needs ``norm``.
        act (str): Hidden activation, ``'relu'`` or ``'gelu'``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int, bias: bool = True,
                 norm: Optional[str] = 'bn', last_norm: bool = False, act: str = 'relu'):
        if num_layers < 1 or norm not in ('bn', None) or act not in _ACTIVATIONS or (last_norm and norm is None):
            raise ValueError(f'MLPHead: need num_layers >= 1, norm in ("bn", None), act in {tuple(_ACTIVATIONS)} '
                             f'and a norm for last_norm; got {num_layers}, {norm!r}, {act!r}, {last_norm}')
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        layers = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(d_in, d_out, bias=bias))
            if i < num_layers - 1:
                layers += [AllReduceBatchNorm1d(d_out)] if norm else []
                layers.append(_ACTIVATIONS[act]())
            elif last_norm:
                layers.append(AllReduceBatchNorm1d(d_out, affine=False))
        super().__init__(*layers)
