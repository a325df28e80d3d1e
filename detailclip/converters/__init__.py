"""Checkpoint converters, above :mod:`detailclip.models`: importers of foreign checkpoints (OpenAI CLIP, SLIP, the
DetailCLIP reference) and the exporter of trained backbones for downstream use."""
