"""retain_freed_memory: freed tensor memory is reused, not handed back to the OS and faulted in again."""

import subprocess
import sys

import pytest

# Each round allocates 8 x 4 MB and frees them: 32 MB at the heap top, past glibc's default trim
# threshold (twice the largest block freed, 8 MB), so by default every round returns it to the
# OS and faults its 8,192 pages in again (about 8,200 minor faults a round, measured); retained,
# the 20 rounds after the first fault in about one 4 MB block in all (1,025 faults, measured).
PROGRAM = """
import resource, sys, torch
from scalegmn.train.setup import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
def round_():
    xs = [torch.ones(1 << 20) for _ in range(8)]  # 4 MB each, written (faulted) in full
    del xs
round_()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    round_()
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
    assert retained < 8_192, retained  # all 20 rounds: under one round's pages
    assert default > 20 * 4_096, default  # at least half of every round's pages faulted anew
