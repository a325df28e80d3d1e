"""FreezeLastLayerHook: the head's output layer stays put by a real AdamW step during the frozen epochs, and only
then; every other parameter moves."""
from types import SimpleNamespace

import pytest
import torch

from detailclip.models.heads.ibot_head import DINOHead
from detailclip.registry import HOOKS

ITERS_PER_EPOCH = 3


def _step(head: DINOHead, optimizer: torch.optim.Optimizer) -> dict:
    """One AdamW step on a DINO-style loss; returns the parameters before it."""
    before = {name: p.detach().clone() for name, p in head.named_parameters()}
    logits = head(torch.randn(4, 8))
    loss = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return before


def _moved(head: DINOHead, before: dict) -> set:
    return {name for name, p in head.named_parameters() if not torch.equal(p, before[name])}


@pytest.mark.parametrize('epochs', [1, 2])
def test_last_layer_fixed_in_the_frozen_epochs_only(epochs):
    torch.manual_seed(0)
    head = DINOHead(in_dim=8, out_dim=16, hidden_dim=8, bottleneck_dim=4)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=0.0)
    hook = HOOKS.build(dict(type='FreezeLastLayerHook', epochs=epochs))
    runner = SimpleNamespace(model=head, iter=0, train_dataloader=range(ITERS_PER_EPOCH))
    hook.before_train(runner)
    last = {'last_layer.weight_v'}  # weight_g is fixed at 1 (norm_last_layer)
    trainable = {name for name, p in head.named_parameters() if p.requires_grad}
    for iteration in range((epochs + 1) * ITERS_PER_EPOCH):
        runner.iter = iteration
        hook.before_train_iter(runner, batch_idx=iteration % ITERS_PER_EPOCH)
        moved = _moved(head, _step(head, optimizer))
        expected = trainable - last if iteration < epochs * ITERS_PER_EPOCH else trainable
        assert moved == expected, iteration
    hook.after_train(runner)
    assert not hook._handles


def test_no_matching_parameter_is_an_error():
    hook = HOOKS.build(dict(type='FreezeLastLayerHook'))
    with pytest.raises(ValueError, match='no trainable parameter named'):
        hook.before_train(SimpleNamespace(model=torch.nn.Linear(2, 2)))
