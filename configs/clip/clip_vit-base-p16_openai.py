# OpenAI CLIP ViT-B/16 (arXiv 2103.00020; 400M image-text pairs), evaluation only: the seed table's "CLIP 400M" row.
# Import the released weights, then evaluate:
#   python tools/model_converters/import_openai_clip.py ViT-B-16.pt work_dirs/clip_vit-base-p16_openai.pth
#   python tools/test.py configs/clip/clip_vit-base-p16_openai.py work_dirs/clip_vit-base-p16_openai.pth
# OpenAI's ViT differs from the SLIP-family one: a LayerNorm before the blocks (no patch-embedding bias), QuickGELU,
# LayerNorm eps 1e-5, and its own pixel mean/std.
_base_ = [
    '../_base_/models/clip_vit-base-p16.py',
    '../_base_/datasets/clip_eval.py',
    '../_base_/default_runtime.py',
]
model = dict(
    # OpenAI's normalisation (0.48145466, 0.4578275, 0.40821073) / (0.26862954, 0.26130258, 0.27577711), 0-255 scale
    data_preprocessor=dict(type='ImageTextDataPreprocessor', mean=[122.77094, 116.74601, 104.09374],
                           std=[68.50053, 66.63216, 70.32316]),
    image_encoder=dict(pre_norm=True, act_layer='quick_gelu', norm_eps=1e-5),
)
