"""reuse_freed_memory(): a freed large block serves the next allocation instead of being faulted in afresh."""
import subprocess
import sys

from detailclip.testing import ROOT

SCRIPT = '''
import resource, sys, torch
from detailclip.utils.memory import reuse_freed_memory
if sys.argv[1] == 'reuse':
    assert reuse_freed_memory()
for _ in range(9):  # glibc's small-block cache pins up to 7 freed blocks before they merge
    torch.ones(2 ** 24)  # 64 MiB, freed at once, as a training step's tensors are
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(2 ** 24)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


def _page_faults(mode: str) -> int:
    """Minor page faults of the tenth of ten 64 MiB allocations, in a fresh process (malloc settings are global)."""
    return int(subprocess.run([sys.executable, '-c', SCRIPT, mode], capture_output=True, text=True, check=True,
                              cwd=ROOT).stdout)


def test_freed_memory_is_reused_without_page_faults():
    system, reuse = _page_faults('system'), _page_faults('reuse')
    assert reuse < 16 and system > 2 * reuse + 16, (system, reuse)  # 64 MiB: 16384 pages of 4 KiB, 32 of 2 MiB
