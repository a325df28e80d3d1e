# Tiny towers for the synthetic world on a CPU: 4-layer 128-wide ViT with patch 8 (8x8 grid on 64-pixel views),
# 3-layer 128-wide text tower over 32 tokens. Leaves write `model = dict(image_encoder=_base_.tiny_image_encoder, ...)`.
# (`stem='conv'` makes the supervised tiny ViT learn shapes much faster, 34 % vs 13-16 % validation accuracy after
# 200 steps, but with the CLIP recipe as it stands it trained worse: zero-shot 12.5 %, retrieval I2T R@10 16 %.)
tiny_width = 128
tiny_image_encoder = dict(img_size=64, patch_size=8, embed_dim=tiny_width, depth=4, num_heads=4)
tiny_text_encoder = dict(context_length=32, width=tiny_width, layers=3, heads=4)
