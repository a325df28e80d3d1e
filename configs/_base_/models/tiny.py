# Tiny towers for the synthetic world on a CPU: 4-layer 128-wide ViT on an 8x8 grid of 64-pixel views, 3-layer
# 128-wide text tower over 32 tokens. The ViT uses stride-2 convolutions instead of the 8x8 patchify convolution
# (`stem='conv'`): a from-scratch ViT this small learns shapes from a few thousand images only with early convolutions
# (tiny CLIP, 8 epochs at lr 4e-4: zero-shot 20.3 % vs 14.7 %, kNN 35.0 % vs 16.6 % with the patch stem).
# Leaves write `model = dict(_base_.tiny_towers, ...)` (image-text methods) or `model = dict(image_encoder=
# _base_.tiny_image_encoder, ...)` (image-only ones) and size their heads with the tiny_* heads below.
tiny_width = 128
tiny_image_encoder = dict(img_size=64, patch_size=8, embed_dim=tiny_width, depth=4, num_heads=4, stem='conv')
tiny_text_encoder = dict(context_length=32, width=tiny_width, layers=3, heads=4)
tiny_towers = dict(image_encoder=tiny_image_encoder, text_encoder=tiny_text_encoder, embed_dim=tiny_width)
# heads at the tiny width: SimCLR's head and BYOL's projector; the iBOT / DINO head; the MAE-style decoder
tiny_mlp_head = dict(in_dim=tiny_width, hidden_dim=512, out_dim=128)
tiny_distillation_head = dict(in_dim=tiny_width, out_dim=1024, hidden_dim=512, bottleneck_dim=128)
tiny_decoder = dict(in_dim=tiny_width, width=tiny_width, num_heads=4)
# Synthetic-world adaptation of the EMA teacher (methods with one): the paper's base momentum 0.996 halves the
# teacher's lag every 173 steps, 0.1 % of a paper run but half of a 372-step tiny run, whose teacher would still hold
# 47 % of its random init at the end. The tiny leaves state the base momentum as a half-life of a quarter epoch
# instead (23 steps at batch 64, m = 0.970; 0.4 % of the init left after 372 steps), then cosine to 1 as the paper.
# Chosen from that ratio, not tuned.
tiny_teacher_half_life_epochs = 0.25
tiny_ema_hook = dict(type='EMATeacherHook', half_life_epochs=tiny_teacher_half_life_epochs)
