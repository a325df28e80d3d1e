#!/usr/bin/env bash
# Wheels for tools/benchmarks/gpu.sh on a lent GPU machine, whose Python 3.12 has torch but no network and neither
# MMEngine nor this project's timm: MMEngine, timm and what the package imports beyond that machine's image
# (open_clip's tokenizer, webdataset), at the versions of .venv, saved to .whl/ (ignored by git) for the device tool
# to carry (about 6 MB). Run it here, where the package registry is reachable.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
names=(mmengine addict yapf platformdirs termcolor timm open_clip_torch ftfy wcwidth webdataset braceexpand)
read -r -a specs <<< "$($PY -c 'import sys, importlib.metadata as m
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' "${names[@]}")"
platforms=()
for tag in manylinux_2_28 manylinux_2_17 manylinux2014 manylinux1; do platforms+=(--platform "${tag}_x86_64"); done
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl "${specs[@]}"
ls -s .whl
