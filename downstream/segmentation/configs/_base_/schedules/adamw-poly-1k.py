# The 160k ADE20K schedule (adamw-poly-160k.py) shortened for the synthetic world on a CPU: the same optimizer and
# layer decay, 100 warm-up iterations, poly to 0 at 1k, fp32 (MMEngine's AMP wrapper needs a GPU).
_base_ = ['./adamw-poly-160k.py']
max_iters = 1000
warmup_iters = 100
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(_base_.optim_wrapper.optimizer, lr=1e-3),
                     constructor=_base_.optim_wrapper.constructor, paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
param_scheduler = [dict(_base_.param_scheduler[0], end=warmup_iters),
                   dict(_base_.param_scheduler[1], begin=warmup_iters, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
