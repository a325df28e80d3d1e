# The ViT-B/16 backbone of both COCO models (docs/methods.md 9.4): blocks 3/5/7/11 tapped without the final LayerNorm
# (`out_with_norm` is iBOT's ADE20K setting, not its detection one), iBOT's adapter to strides 4/8/16/32 (deconvs with
# SyncBN / identity / max-pool), drop path 0.2. img_size (672, 1088) gives the 42x68 grid iBOT resizes pos_embed to
# for COCO (its 1092 is not a multiple of 16); other input sizes resample it at run time. `pretrained` is an export
# of tools/model_converters/export_backbone.py (tools/downstream.py sets it); None trains from random init.
vit_backbone = dict(type='ViTBackbone', img_size=(672, 1088), patch_size=16, embed_dim=768, depth=12, num_heads=12,
                    mlp_ratio=4.0, stem='patch', drop_path_rate=0.2, out_indices=(3, 5, 7, 11), out_with_norm=False,
                    fpn_adapter=True, norm_cfg=dict(type='SyncBN', requires_grad=True), pretrained=None)
