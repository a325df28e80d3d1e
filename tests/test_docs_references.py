"""The docs are reference pages of bounded size, and every pointer from code into them resolves in the repository."""
import os
import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHODS = ROOT / 'docs' / 'methods.md'
# ignored or generated folders (see .gitignore): never part of a clone
SKIP_DIRS = {'.git', '.venv', 'work_dirs', '__pycache__', 'build', 'wandb', '.whl', '.pytest_cache'}
CODE_SUFFIXES = ('.py', '.sh', '.yaml', '.yml', '.cfg')
README_MAX_BYTES = 8192
DOC_MAX_LINES = 260

# a citation of the method page: `docs/methods.md 7.5`, `docs/methods.md 9.1, 9.2`, `docs/methods.md 1.2-1.4`
CITATION = re.compile(r'(?<![\w/])(docs/)?methods\.md(?P<sections>(?:[ \n#]*\d+(?:\.\d+)?(?:\s*(?:-|,)\s*(?=\d))?)*)')
SECTION = re.compile(r'\d+(?:\.\d+)?')
TAG = re.compile(r'\bQ-[A-Z]\d+\b')
# Wording that describes how the project was made rather than what it is. Each pattern is narrow enough to leave
# the same words alone where they mean something else (pytest's session scope, `--max-runs N`, "runs A-CLIP").
DIARY = {
    'work period': re.compile(r'\bwork(?:ing)? periods?\b', re.IGNORECASE),
    'run letter': re.compile(r'(?<![\w-])[Rr]uns? [A-Z](?:-[A-Z])?(?![\w-])'
                             r'(?! (?:times|steps|iterations|epochs|processes|ranks|workers|rounds)\b)'),
    'session': re.compile(r'\bsessions?\b', re.IGNORECASE),
    'machine diary': re.compile(r'\b(?:noisy|this|the shared) VM\b', re.IGNORECASE),
}
SESSION_ALLOWED = re.compile(r"""scope=['"]session['"]|\b(?:test|pytest|wandb|W&B|HTTP|requests)\s+sessions?\b""",
                             re.IGNORECASE)
DATED = re.compile(r'\b20\d\d-[01]\d-[0-3]\d\b')  # a dated log entry (Markdown pages only)


def _tree(suffixes: Tuple[str, ...], names: Tuple[str, ...] = ()) -> Iterator[Path]:
    """Files of the working tree with one of ``suffixes`` (or one of ``names``), ignored folders left out."""
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith('.egg-info')
                   and not (here == ROOT and d == 'data')]
        for name in files:
            if name.endswith(suffixes) or name in names:
                yield here / name


def _code_files() -> List[Path]:
    """Python, shell, YAML and cfg files (configs are Python), this test left out: it names what it looks for."""
    return sorted(p for p in _tree(CODE_SUFFIXES) if p != Path(__file__).resolve())


def _text_files() -> List[Path]:
    """Code files, Markdown pages, the Makefile and the CI entry point."""
    return sorted(p for p in _tree(CODE_SUFFIXES + ('.md', ), ('Makefile', 'run')) if p != Path(__file__).resolve())


def _methods_page() -> Tuple[Set[str], Set[str]]:
    """Section numbers (``7``, ``7.5``) and reference tags (``Q-D13``) that docs/methods.md defines."""
    text = METHODS.read_text(encoding='utf-8')
    sections = set(re.findall(r'^#{2,3} (\d+(?:\.\d+)?)[. ]', text, re.MULTILINE))
    tags = set(re.findall(r'^\| (Q-[A-Z]\d+) \|', text, re.MULTILINE))
    return sections, tags


def _matches(paths: List[Path], pattern: re.Pattern) -> Iterator[Tuple[str, re.Match]]:
    """(``path:line``, match) for every match of ``pattern`` in the files ``paths``."""
    for path in paths:
        text = path.read_text(encoding='utf-8', errors='replace')
        for m in pattern.finditer(text):
            line = text.count('\n', 0, m.start()) + 1
            yield f'{path.relative_to(ROOT)}:{line}', m


def test_methods_page_defines_sections_and_tags():
    sections, tags = _methods_page()
    assert {'1', '7', '7.5', '9.4', '11'} <= sections
    assert {'Q-D6', 'Q-D13', 'Q-T1'} <= tags


def test_code_cites_the_methods_page_of_the_repository():
    """Every ``methods.md`` in code and configs is ``docs/methods.md``, and each cited section exists there."""
    sections, _ = _methods_page()
    problems = []
    for where, m in _matches(_code_files(), CITATION):
        if not m.group(1):
            problems.append(f'{where}: cites "methods.md", not "docs/methods.md"')
        missing = [s for s in SECTION.findall(m.group('sections')) if s not in sections]
        if missing:
            problems.append(f'{where}: docs/methods.md has no section {", ".join(missing)}')
    assert not problems, '\n'.join(problems)


def test_reference_tags_are_defined_in_the_methods_page():
    """A ``Q-`` tag anywhere in code, configs or docs is a row of docs/methods.md's reference tables."""
    _, tags = _methods_page()
    problems = [f'{where}: {m.group()}' for where, m in _matches(_text_files(), TAG) if m.group() not in tags]
    assert not problems, 'tags docs/methods.md does not define:\n' + '\n'.join(problems)


def test_readme_is_a_short_guide_with_the_two_commands():
    readme = ROOT / 'README.md'
    size = readme.stat().st_size
    assert size <= README_MAX_BYTES, f'README.md is {size} bytes (at most {README_MAX_BYTES})'
    text = readme.read_text(encoding='utf-8')
    assert re.search(r'^make train\b', text, re.MULTILINE) and re.search(r'^make test\b', text, re.MULTILINE)
    assert 'make test' in (ROOT / '.ci' / 'run').read_text(encoding='utf-8')  # CI runs the README's test command


@pytest.mark.parametrize('page', sorted((ROOT / 'docs').glob('*.md')), ids=lambda p: p.name)
def test_doc_pages_stay_short(page: Path):
    lines = len(page.read_text(encoding='utf-8').splitlines())
    assert lines <= DOC_MAX_LINES, f'{page.name} has {lines} lines (at most {DOC_MAX_LINES}): split it'


def _diary_hits(text: str, markdown: bool) -> List[Tuple[int, str]]:
    """(line number, what) for each line of ``text`` with diary wording."""
    hits: Dict[int, str] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        for name, pattern in DIARY.items():
            m = pattern.search(line)
            if m and not (name == 'session' and SESSION_ALLOWED.search(line)):
                hits.setdefault(line_no, f'{name}: {m.group()!r}')
        dated = DATED.search(line) if markdown else None
        if dated:
            hits.setdefault(line_no, f'dated entry: {dated.group()!r}')
    return sorted(hits.items())


def test_nothing_describes_how_the_project_was_made():
    """No work periods, sessions, run letters, dated logs or remarks about one machine, anywhere in the tree."""
    problems = []
    for path in _text_files():
        text = path.read_text(encoding='utf-8', errors='replace')
        problems += [f'{path.relative_to(ROOT)}:{n}: {what}' for n, what in _diary_hits(text, path.suffix == '.md')]
    assert not problems, '\n'.join(problems)


def test_diary_patterns_leave_ordinary_words_alone():
    ordinary = ("@pytest.fixture(scope='session')\n--max-runs N\nthe table runs A-CLIP\nruns N times\n"
                'a run of the suite\nshared by the whole test session\nrelease 2.1.0\n')
    diary = 'runs J-W\n(run T)\nthe fifth session\nwork period 3\nthis noisy VM\n### Runs (2026-12-06)\n'
    assert _diary_hits(ordinary, markdown=True) == []
    assert [n for n, _ in _diary_hits(diary, markdown=True)] == [1, 2, 3, 4, 5, 6]
