"""A training step reads nothing back to the host (on a GPU: no host-device synchronisation): forward, backward,
optimizer step and EMA update of every method family whose masks have a fixed count per row, under
:class:`~detailclip.utils.host_reads.HostReads`. And it keeps every tensor on the GPU: the same families on fake
CUDA tensors under bf16 autocast, with no GPU."""
from unittest import mock

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch._subclasses.fake_tensor import FakeTensorMode

from detailclip.models.data_preprocessor import ImageTextDataPreprocessor
from detailclip.models.losses.ibot_loss import masked_patch_mean
from detailclip.models.maskers.ops import select_masked
from detailclip.testing import METHOD_CONFIGS, build_method, method_batch
from detailclip.utils.host_reads import HostReads, reads_to_host, sites_text

# A-CLIP's reference box mapping ('exact', the paper config) resizes one crop at a time at whole-pixel boxes read on
# the host; its clean config maps the boxes on the device ('grid_sample').
OVERRIDES = dict(aclip=dict(masker=dict(box_mapping='grid_sample')))
# iBOT's block masks differ in count per row, so selecting the masked tokens must learn their number
VARIABLE_COUNT = ('ibot', )


def _step_reads(family: str) -> HostReads:
    model, cfg = build_method(family, **OVERRIDES.get(family, {}))
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)  # the config's: fused AdamW
    batch = method_batch(family, model, cfg, batch_size=2)
    with HostReads() as reads:
        losses = model(batch, None, mode='loss')
        wrapper.update_params(model.parse_losses(losses)[0])
        if model.teacher is not None:
            model.update_teacher(0.99)
        model.clamp_logit_scale()
    return reads


@pytest.mark.parametrize('family', [f for f in METHOD_CONFIGS if f not in VARIABLE_COUNT])
def test_training_step_reads_nothing_back(family):
    reads = _step_reads(family)
    assert reads.total == 0, f'{family} step reads tensors to the host: {sites_text(reads.sites)}'


def test_variable_count_masks_read_only_where_the_masked_tokens_are_selected():
    reads = _step_reads('ibot')
    where = {site for _, site in reads.sites}
    assert reads.total > 0 and all(site.startswith('detailclip/models/maskers/ops.py') or 'IndexBackward' in site
                                   for site in where), sites_text(reads.sites)


@pytest.mark.parametrize('family', [f for f in METHOD_CONFIGS if f not in VARIABLE_COUNT])
def test_training_step_stays_on_the_gpu(family):
    """Forward under CUDA bf16 autocast (AutocastOptimWrapper), then the fused AdamW step and the EMA update, on fake
    CUDA tensors (FakeTensorMode: shapes, dtypes and devices without a GPU; an op mixing devices raises), with no
    blocking upload of a host tensor (:class:`HostReads`). The backward cannot run there (autograd's engine needs a
    real device), so the gradients are set to zeros. Autocast needs ``torch.cuda.is_available()`` and bf16 support to
    say yes."""
    model, cfg = build_method(family, **OVERRIDES.get(family, {}))
    batch = method_batch(family, model, cfg, batch_size=2)
    optim_cfg = {k: v for k, v in cfg.optim_wrapper.items() if k not in ('loss_scale', 'dtype')}
    with FakeTensorMode(allow_non_fake_inputs=True):
        model = model.to('cuda')  # (Tensor.cuda() initialises CUDA even under the fake mode)
        batch = {k: [v.to('cuda') for v in value] if isinstance(value, list) else value.to('cuda')
                 for k, value in batch.items()}
        wrapper = build_optim_wrapper(model, dict(optim_cfg, type='AutocastOptimWrapper', device_type='cuda'))
        with HostReads() as reads:
            with mock.patch('torch.cuda.is_available', return_value=True), \
                    mock.patch('torch.cuda.is_bf16_supported', return_value=True), wrapper.optim_context(model):
                losses = model(batch, None, mode='loss')
                matmul_dtype = (batch['views'][0] @ batch['views'][0].transpose(-2, -1)).dtype
            for param in model.parameters():
                param.grad = torch.zeros_like(param) if param.requires_grad else None
            wrapper.step()
            if model.teacher is not None:
                model.update_teacher(0.99)
            model.clamp_logit_scale()
    assert reads.total == 0, f'{family} step waits for the GPU: {sites_text(reads.sites)}'
    assert matmul_dtype == torch.bfloat16  # autocast was on
    assert {loss.device.type for loss in losses.values()} == {'cuda'}
    assert {t.device.type for t in (*model.parameters(), *model.buffers())} == {'cuda'}
    assert {v.device.type for state in wrapper.optimizer.state.values() for v in state.values()} == {'cuda'}


def test_data_preprocessor_uploads_without_waiting():
    """The batch goes to the GPU with non-blocking copies (the host does not wait for the previous step's kernels)
    and is normalised there."""
    views = [[torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8) for _ in range(2)] for _ in range(2)]
    text = list(torch.tensor([[5, 3, 8, 0, 0], [5, 8, 0, 0, 0]]))  # the padding columns are dropped on the host
    data = dict(inputs=dict(views=views, teacher_views=views[:1], text=text,
                            boxes=[torch.rand(3, 4) for _ in range(2)]))
    with FakeTensorMode(allow_non_fake_inputs=True):
        preprocessor = ImageTextDataPreprocessor().to('cuda')
        with HostReads() as reads:
            batch = preprocessor(data, True)['inputs']
    assert reads.total == 0, sites_text(reads.sites)
    tensors = [*batch['views'], *batch['teacher_views'], batch['text'], batch['boxes']]
    assert {t.device.type for t in tensors} == {'cuda'}
    assert batch['views'][0].dtype == torch.float32 and batch['views'][0].shape == (2, 3, 8, 8)
    assert batch['text'].shape == (2, 3)


def test_host_reads_finds_item_boolean_indexing_and_its_backward():
    x = torch.randn(3, 4, requires_grad=True)
    with HostReads() as reads:
        picked = x[x.detach() > 0]
        picked.sum().backward()
        float(x.detach().max())
        torch.repeat_interleave(torch.tensor([1, 2]), output_size=3)  # size given: no read
    assert set(reads.sites) == {('index', 'outside this repository'), ('index_put', 'backward IndexBackward0'),
                                ('_local_scalar_dense', 'outside this repository')}
    with HostReads() as reads:
        select_masked(x, x.detach() > 0)  # no count: boolean indexing, located in the repository's code
    (op, site), = reads.sites
    assert op == 'index' and site.startswith('detailclip/models/maskers/ops.py:')


def test_device_to_host_copies_and_blocking_uploads_are_reads():
    """``.cpu()``, ``.tolist()`` and ``.numpy()`` of a GPU tensor copy it to the host first; an upload without
    ``non_blocking``, and a host tensor handed to an op on GPU tensors, make the host wait too (fake CUDA tensors: no
    GPU needed to build the op arguments)."""
    with FakeTensorMode():
        gpu, host, scalar = torch.empty(2, device='cuda'), torch.empty(2), torch.tensor(2.0)
    aten, cuda, cpu = torch.ops.aten, torch.device('cuda'), torch.device('cpu')
    assert reads_to_host(aten._to_copy.default, (gpu, ), dict(device=cpu))
    assert reads_to_host(aten.copy_.default, (host, gpu), {})
    assert reads_to_host(aten._to_copy.default, (host, ), dict(device=cuda))
    assert reads_to_host(aten.copy_.default, (gpu, host), {})
    assert reads_to_host(aten.index.Tensor, (gpu, [host.long()]), {})  # x[[0, 1]]: the list index is uploaded
    assert not reads_to_host(aten._to_copy.default, (host, ), dict(device=cuda, non_blocking=True))
    assert not reads_to_host(aten.copy_.default, (gpu, host, True), {})
    assert not reads_to_host(aten.mul.Tensor, (gpu, scalar), {})  # a 0-dim host tensor passes as a number
    assert not reads_to_host(aten._to_copy.default, (gpu, ), dict(dtype=torch.float16))
    assert not reads_to_host(aten._to_copy.default, (host, ), dict(device=cpu))


@pytest.mark.parametrize('shape', [(2, 6), (3, 2, 6)])
def test_select_masked_with_a_known_count_equals_boolean_indexing(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, 5, generator=gen)
    mask = torch.rand(shape, generator=gen).argsort(-1) < 4  # 4 True per row, in random places
    expected = x[mask]
    with HostReads() as reads:
        got = select_masked(x, mask, num_masked=4)
    assert reads.total == 0
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(select_masked(x, mask), expected, rtol=0, atol=0)


def test_masked_patch_mean_weights_each_row_by_its_own_count():
    masks = torch.tensor([[[True, False, True], [False, False, False]], [[True, True, True], [False, True, False]]])
    ce = torch.arange(1., 1 + int(masks.sum()))  # in masks order: rows hold 2, 0, 3 and 1 terms
    with HostReads() as reads:
        loss = masked_patch_mean(ce, masks)
    assert reads.total == 0
    assert loss.item() == pytest.approx(((1 + 2) / 2 + 0 + (3 + 4 + 5) / 3 + 6 / 1) / 4)
