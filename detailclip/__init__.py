"""DetailCLIP platform: config-driven detail-oriented CLIP pretraining."""
__version__ = "0.1.0"
