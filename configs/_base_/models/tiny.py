# Tiny towers for the synthetic world on a CPU: 4-layer 128-wide ViT on an 8x8 grid of 64-pixel views (a stride-2
# convolutional stem instead of the 8x8 patchify convolution: a from-scratch ViT this small learns shapes from a few
# thousand images only with early convolutions), 3-layer 128-wide text tower over 32 tokens.
# Leaves write `model = dict(image_encoder=_base_.tiny_image_encoder, ...)`.
tiny_width = 128
tiny_image_encoder = dict(img_size=64, patch_size=8, embed_dim=tiny_width, depth=4, num_heads=4, stem='conv')
tiny_text_encoder = dict(context_length=32, width=tiny_width, layers=3, heads=4)
