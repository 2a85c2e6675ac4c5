"""The host allocator setting that training applies on the CPU (device.tune_cpu_allocator)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Faults of a typical step (the median of 9) of a small MLP's forward + backward on 40 MB
# activations, after a warm-up: the heap may still grow once in a while (a one-off, not a per-step cost).
_PROBE = """
import resource, sys, torch
from cryoscape.device import tune_cpu_allocator
tuned = tune_cpu_allocator() if sys.argv[1] == "1" else False
torch.set_num_threads(1)
mlp = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
x = torch.randn(40_000, 64)
def step():
    mlp(x).square().mean().backward()
step(); step()
faults = []
for _ in range(9):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(int(tuned), sorted(faults)[4])
"""


def _probe(tune: bool) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "1" if tune else "0"], capture_output=True, text=True, check=True
    ).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_large_blocks_are_reused_instead_of_faulted_in_again():
    tuned, faults_tuned = _probe(True)
    if not tuned:
        pytest.skip("this libc has no mallopt (not glibc)")
    _, faults_default = _probe(False)
    pages = 40_000 * 256 * 4 // 4096  # pages of one hidden activation
    # default glibc maps each large block afresh: every step faults its activations in again
    assert faults_default > pages
    # tuned: freed blocks are reused from the heap (a step faults in at most a fraction of one)
    assert faults_tuned < pages // 2 and 8 * faults_tuned < faults_default


def test_tuning_is_idempotent():
    from cryoscape.device import tune_cpu_allocator

    assert tune_cpu_allocator() == tune_cpu_allocator()
