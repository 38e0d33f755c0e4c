"""retain_freed_memory: freed tensor memory is reused, not handed back to the OS and faulted in again."""

import subprocess
import sys

import pytest

# Round r allocates 8 blocks of 1 MB + r * 64 KB and frees them, as a training job allocates
# buffers of changing sizes (batches, views, evaluation). By default glibc mmaps every block above
# the largest it has freed so far, so each round's blocks are mmapped, unmapped when freed and
# faulted in anew: all their 68,000 pages over rounds 1-20, measured (not the same 4 MB blocks
# over and over: glibc's adaptive threshold then keeps them in the heap, or hands the heap top
# back, depending on what lands above them). Retained, the heap grows by 512 KB a round:
# 2,864-3,264 faults over the 20 rounds, measured.
PROGRAM = """
import resource, sys, torch
from scalegmn.train.setup import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
def round_(r):
    xs = [torch.ones((1 << 18) + r * (1 << 14)) for _ in range(8)]  # written (faulted) in full
    del xs
round_(0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for r in range(1, 21):
    round_(r)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_without_page_faults() -> None:
    applied, retained = _faults("retain")
    assert applied == "True"
    _, default = _faults("default")  # control: glibc's own policy
    assert retained < 8_000, retained  # under an eighth of the control's
    assert default > 60_000, default  # nearly every page of every round faulted anew
