"""Makes MMEngine checkpoints loadable on torch's weights-only path (see detailclip.utils.checkpoint)."""
from mmengine.hooks import Hook

from detailclip.registry import HOOKS
from detailclip.utils.checkpoint import message_hub_from_plain, message_hub_to_plain


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Stores the message hub's history buffers as plain data when saving, and restores them when loading."""

    priority = 'VERY_LOW'  # after every other hook has added its entries to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            message_hub_to_plain(checkpoint['message_hub'])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            message_hub_from_plain(checkpoint['message_hub'])
