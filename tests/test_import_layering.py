"""The package's layering, read from the source of every module (function-level imports included):

- ``utils`` imports no other part of the project; ``models`` none of the parts above it;
- the core package imports no downstream framework (mmcv, mmseg, mmdet) and not ``downstream``;
- the subpackages' import graph has no cycle.
"""
import ast
from collections import defaultdict
from pathlib import Path
from typing import Dict, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'detailclip'
FORBIDDEN = {
    'utils': {'registry', 'datasets', 'models', 'evaluation', 'engine', 'converters', 'visualization', 'testing'},
    'models': {'datasets', 'evaluation', 'engine', 'converters', 'visualization', 'testing'},
}
FOREIGN = ('mmcv', 'mmseg', 'mmdet', 'downstream', 'tools')


def imported_modules(path: Path, root: Path = PACKAGE) -> Set[str]:
    """Absolute names of every module ``path`` (a file of the package at ``root``) imports, relative imports
    resolved."""
    package = path.relative_to(root.parent).with_suffix('').parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            names.add('.'.join((*base, node.module)) if node.module else '.'.join(base))
    return names


def part_of(path: Path) -> str:
    """The subpackage (or top-level module) of the package that ``path`` belongs to."""
    return path.relative_to(PACKAGE).with_suffix('').parts[0]


def project_part(name: str) -> str:
    """``detailclip.<part>...`` -> part; '' for other modules."""
    parts = name.split('.')
    return parts[1] if parts[0] == 'detailclip' and len(parts) > 1 else ''


def import_graph() -> Dict[str, Dict[str, Set[str]]]:
    """part -> imported part -> the files that import it."""
    graph = defaultdict(lambda: defaultdict(set))
    for path in PACKAGE.rglob('*.py'):
        for name in imported_modules(path):
            target = project_part(name) or name.split('.')[0]
            if target != part_of(path):
                graph[part_of(path)][target].add(str(path.relative_to(PACKAGE.parent)))
    return graph


@pytest.mark.parametrize('part', sorted(FORBIDDEN))
def test_lower_layers_import_nothing_above_them(part):
    found = {t: sorted(f) for t, f in import_graph()[part].items() if t in FORBIDDEN[part]}
    assert not found, f'detailclip.{part} imports parts above it: {found}'


def test_core_imports_no_downstream_framework():
    found = {t: sorted(f) for imports in import_graph().values() for t, f in imports.items() if t in FOREIGN}
    assert not found, f'the core package imports downstream frameworks or tools: {found}'


def test_no_cycle_between_subpackages():
    graph = {p: {t for t in imports if (PACKAGE / t).is_dir() or (PACKAGE / f'{t}.py').is_file()}
             for p, imports in import_graph().items()}

    def cycle_from(node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            found = cycle_from(nxt, path + [nxt])
            if found:
                return found
        return None

    cycles = [c for c in (cycle_from(p, [p]) for p in sorted(graph)) if c]
    assert not cycles, f'import cycles between subpackages: {cycles}'


def test_the_checks_see_function_level_and_relative_imports(tmp_path):
    module = tmp_path / 'detailclip' / 'datasets' / 'm.py'
    module.parent.mkdir(parents=True)
    module.write_text('def f():\n    from detailclip.evaluation.zero_shot import x\n    from ..models import y\n'
                      '    import mmdet\n')
    assert imported_modules(module, tmp_path / 'detailclip') == {'detailclip.evaluation.zero_shot', 'detailclip.models',
                                                                 'mmdet'}
