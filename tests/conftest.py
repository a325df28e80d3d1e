"""Shared fixtures (helpers live in detailclip/testing.py: a package named `tests` from site-packages would shadow
an import of this file)."""
import os

import pytest

os.environ.setdefault('WANDB_MODE', 'offline')


@pytest.fixture(scope='session')
def tiny_world(tmp_path_factory):
    """A small synthetic world (real formats) shared by the whole session."""
    from detailclip.testing import make_tiny_world
    return make_tiny_world(str(tmp_path_factory.mktemp('world') / 'synthetic_world'))
