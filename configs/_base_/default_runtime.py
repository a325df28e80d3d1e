default_scope = 'detailclip'
custom_imports = dict(
    imports=['detailclip.models', 'detailclip.datasets', 'detailclip.engine', 'detailclip.evaluation'],
    allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # checkpoints and the last_checkpoint pointer written atomically: a run killed at any moment resumes
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # torch's RNG seeded from (seed, iteration, rank) before each iteration: --resume draws the same masks
    iteration_seed=dict(type='IterationSeedHook'),
    # a NaN/inf loss stops the run before the diverged state is checkpointed
    finite_loss=dict(type='FiniteLossHook'),
    # skipped training samples summed exactly over workers and ranks and logged per epoch; a flood stops the run
    skipped_samples=dict(type='SkippedSamplesHook', max_skip_fraction=0.1, min_samples=1000),
    # CLIP's s <= 100 after every step (a no-op for image-only models)
    logit_scale=dict(type='LogitScaleClampHook'),
    # checkpoints that load with torch.load(weights_only=True), so --resume needs no unsafe unpickling
    weights_only=dict(type='WeightsOnlyCheckpointHook'),
    # CLIP_benchmark-style JSON of every zero-shot / retrieval evaluation (work_dir/benchmark/iter_N/)
    benchmark_json=dict(type='BenchmarkJSONHook'),
    # teacher attention, token mask and MAE reconstruction of the training batch (vis_data/vis_image/masks_<iter>.png)
    visualization=dict(type='PretrainVisualizationHook', interval=1000, num_images=4),
)
# Hooks live in this dict, keyed by name, so method configs add theirs (ema, teacher_temp) by merging, and
# `--cfg-options default_hooks.ema.momentum=0.99` reaches them; custom_hooks stays free for users.
# reuse_freed_memory: glibc malloc keeps freed host memory for the next step instead of page-faulting it in again
# (detailclip/utils/memory.py; tools/train.py applies it; docs/performance.md measures it)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'), reuse_freed_memory=True)
# validation and test rows log their timings as val/time, val/data_time (not under the training rows' keys)
log_processor = dict(type='LoopTimeLogProcessor', window_size=10, by_epoch=False)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
