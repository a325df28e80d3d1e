"""tools/benchmarks/gpu.sh, the prepared GPU check, run end to end on the CPU with the tiny configs (through
tools/benchmarks/perf.sh): every measurement's record and the Markdown tables for the closing note and the docs."""
import json
import os
import subprocess
import sys
import tarfile

import pytest

from detailclip.testing import ROOT

# The smallest run that proves the script: DetailCLIP's naive and optimized step (OTHERS='' leaves out CLIP and the
# batch-size and image-size runs, which go through the same measure/table code).
NAMES = ['detailclip-naive-bf16-b2', 'detailclip-bf16-b2']


@pytest.mark.slow
def test_gpu_script_on_the_cpu(tmp_path):
    out, runs = tmp_path / 'out', tmp_path / 'runs'
    env = dict(os.environ, OUT=str(out), RUNS=str(runs), DEVICE='cpu', BATCH='2', STEPS='1', WARMUP='1', COMPILE='',
               OTHERS='',
               WHEELS=str(tmp_path / 'no-wheels'), PY=sys.executable,
               DETAILCLIP='configs/detailclip/detailclip_vit-tiny-p8_1xb64-coslr-8e_synthetic-world.py')
    subprocess.run(['bash', 'tools/benchmarks/gpu.sh'], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    for name in NAMES:
        record = json.loads((runs / f'{name}.json').read_text())
        assert record['label'] == name and record['precision'] == 'bf16 autocast'
        # the reference's per-parameter AdamW reads each step count; our step reads nothing
        assert (record['ops']['host_reads'] > 0) == record['naive']
    assert sorted(p.name for p in out.iterdir()) == ['runs.tar.gz', 'tables.md']  # what the device tool returns
    with tarfile.open(out / 'runs.tar.gz') as archive:
        assert {f'./{name}.{ext}' for name in NAMES for ext in ('json', 'log')} <= set(archive.getnames())
    tables = (out / 'tables.md').read_text()
    assert '### DetailCLIP ViT-B/16, batch 2, bf16: naive vs optimized' in tables
    assert 'over CLIP' not in tables and tables.count('| host reads (a sync each on a GPU) |') == 1
