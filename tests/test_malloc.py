"""keep_freed_memory: freed tensor memory is reused instead of being faulted in again from the kernel."""

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from lightning_meta.malloc import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():  # like a training step: activations of 64 MiB each (above glibc's 32 MiB mmap cap), then freed
    activations = [torch.ones(16 << 20) for _ in range(3)]
    del activations
for _ in range(8):  # warm-up: glibc settles its heap in a few steps
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_freed_tensor_memory_is_reused_instead_of_faulted_in_again():
    default, kept = _page_faults("default"), _page_faults("keep")
    assert default > 1000, f"expected the default allocator to fault 5 x 3 x 64 MiB in again, got {default} faults"
    # 15 tensors are faulted in without it; with it at most one late heap growth (16,384 faults of 64 MiB) remains.
    assert kept * 10 < default, f"{kept} page faults with keep_freed_memory vs {default} without"
