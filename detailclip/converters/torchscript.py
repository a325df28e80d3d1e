"""The weights of a TorchScript archive (``torch.jit.save``; OpenAI distributes its CLIP checkpoints so), read
without running any of its code.

``torch.jit.load`` compiles the archive's code and calls its classes' ``__setstate__``: a crafted archive runs what
it wants at load time. Here ``data.pkl`` is unpickled by a restricted unpickler instead:

- every ``__torch__.*`` class becomes an inert :class:`ScriptObject` that only stores the state it is given;
- tensors are rebuilt from the archive's ``data/<key>`` records, as ``torch.load`` does (a storage class names
  only its dtype);
- any other global (``builtins.exec``, ``os.system``, ...) stops the read with :class:`UnsafeArchiveError`.

Which attributes are parameters and buffers is read as text from the class declarations in ``code/``
(``__parameters__ = [...]``, ``__buffers__ = [...]``), so the state dict holds the same keys as
``torch.jit.load(path).state_dict()``.
"""
import collections
import pickle
import re
import warnings
import zipfile
from typing import Dict, List, Tuple

import torch

# (parameter names, buffer names) of each scripted module class, by qualified name.
ModuleLayout = Dict[str, Tuple[List[str], List[str]]]

_CLASS = re.compile(r'^class (\w+)\(Module\):\n  __parameters__ = \[(.*?)\]\n  __buffers__ = \[(.*?)\]', re.M)
_NAME = re.compile(r'"([^"]+)"')
_SAFE_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): torch._utils._rebuild_parameter,
    ('collections', 'OrderedDict'): collections.OrderedDict,
}


class UnsafeArchiveError(pickle.UnpicklingError):
    """The archive asks for a global that reading weights never needs."""


class ScriptObject:
    """An instance of a scripted class, holding only the state its pickle gives it; nothing of it runs."""

    qualified_name = ''

    def __setstate__(self, state) -> None:
        self.state = state


def _script_class(qualified_name: str) -> type:
    return type('ScriptObject', (ScriptObject, ), dict(qualified_name=qualified_name))


class _Unpickler(pickle.Unpickler):
    """``data.pkl`` of one archive: tensors from its records, scripted classes inert, nothing else."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str):
        super().__init__(archive.open(f'{prefix}/data.pkl'))
        self.archive, self.prefix = archive, prefix
        self.storages = {}  # record key -> storage, so tensors that share a record share it here too

    def find_class(self, module: str, name: str):
        if module == '__torch__' or module.startswith('__torch__.'):
            return _script_class(f'{module}.{name}')
        if module == 'torch' and name.endswith('Storage') and isinstance(getattr(torch, name, None), type):
            with warnings.catch_warnings():  # the legacy storage classes are deprecated; only their dtype is read
                warnings.simplefilter('ignore', UserWarning)
                return getattr(torch, name).dtype
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[module, name]
        raise UnsafeArchiveError(f'the TorchScript archive asks for {module}.{name}, which weights never need: it was '
                                 'not read (the file may be crafted to run code)')

    def persistent_load(self, pid):
        """``('storage', dtype, key, location, numel)`` -> the typed storage of record ``data/<key>``."""
        kind, dtype, key, _, numel = pid
        if kind != 'storage':
            raise UnsafeArchiveError(f'unknown persistent id {kind!r} in the TorchScript archive')
        if key not in self.storages:
            self.storages[key] = self._read_storage(key, dtype, numel)
        return self.storages[key]

    def _read_storage(self, key: str, dtype: torch.dtype, numel: int) -> torch.storage.TypedStorage:
        raw = bytearray(self.archive.read(f'{self.prefix}/data/{key}'))
        untyped = torch.frombuffer(raw, dtype=torch.uint8).untyped_storage() if raw else torch.UntypedStorage(0)
        storage = torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)
        if storage.size() != numel:
            raise pickle.UnpicklingError(f'record data/{key} holds {storage.size()} elements, the pickle says {numel}')
        return storage


def _archive_prefix(archive: zipfile.ZipFile) -> str:
    """The archive's top folder (``torch.jit.save`` names it after the file)."""
    names = [n for n in archive.namelist() if n.endswith('/data.pkl') and n.count('/') == 1]
    if len(names) != 1:
        raise pickle.UnpicklingError('not a TorchScript archive: no single <name>/data.pkl')
    return names[0].split('/')[0]


def _module_layouts(archive: zipfile.ZipFile, prefix: str) -> ModuleLayout:
    """Parameter and buffer names of every ``class X(Module)`` declared in the archive's ``code/`` files."""
    layouts = {}
    for name in archive.namelist():
        if name.startswith(f'{prefix}/code/') and name.endswith('.py'):
            module = name[len(f'{prefix}/code/'):-len('.py')].replace('/', '.')
            for cls, params, buffers in _CLASS.findall(archive.read(name).decode('utf-8')):
                layouts[f'{module}.{cls}'] = (_NAME.findall(params), _NAME.findall(buffers))
    return layouts


def _state_dict(obj: ScriptObject, layouts: ModuleLayout, prefix: str = '') -> Dict[str, torch.Tensor]:
    """Parameters and buffers of ``obj`` and of its submodules, named as ``nn.Module.state_dict`` names them."""
    params, buffers = layouts.get(obj.qualified_name, ([], []))
    attributes = getattr(obj, 'state', {})
    if not isinstance(attributes, dict):
        raise pickle.UnpicklingError(f'{obj.qualified_name} keeps a custom state: not a plain TorchScript module')
    found = {f'{prefix}{n}': attributes[n] for n in (*params, *buffers) if attributes.get(n) is not None}
    for name, value in attributes.items():
        if isinstance(value, ScriptObject) and value.qualified_name in layouts:
            found.update(_state_dict(value, layouts, f'{prefix}{name}.'))
    return found


def read_torchscript_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The state dict of the TorchScript module archived at ``path``, read without executing the archive.

    Raises:
        UnsafeArchiveError: the pickle asks for a global outside tensors, storages and scripted classes.
    """
    with zipfile.ZipFile(path) as archive:
        prefix = _archive_prefix(archive)
        root = _Unpickler(archive, prefix).load()
        if not isinstance(root, ScriptObject):
            raise pickle.UnpicklingError('the TorchScript archive does not hold a scripted module')
        return {k: v.detach() for k, v in _state_dict(root, _module_layouts(archive, prefix)).items()}
