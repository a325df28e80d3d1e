"""Shared fixtures (helpers live in detailclip/testing.py: a package named `tests` from site-packages would shadow
an import of this file)."""
import os
import uuid

import pytest

os.environ.setdefault('WANDB_MODE', 'offline')


@pytest.fixture(scope='session')
def tiny_world(tmp_path_factory):
    """A small synthetic world (real formats) shared by the whole test session."""
    from detailclip.testing import make_tiny_world
    return make_tiny_world(str(tmp_path_factory.mktemp('world') / 'synthetic_world'))


@pytest.fixture(autouse=True)
def detailclip_default_scope():
    """Each test starts in the platform's default scope: a Runner of another library (mmseg, mmdet) leaves its scope
    the current one for the rest of the process, where the platform's registered names do not resolve."""
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    if current is not None and current.scope_name != 'detailclip':
        DefaultScope.get_instance(f'tests-{uuid.uuid4().hex}', scope_name='detailclip')
    yield
