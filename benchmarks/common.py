"""Helpers shared by the benchmark scripts: run a tool and measure it, score latents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def run_measured(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` inside a fresh Python wrapper; return (wall s, peak RSS GB of the tool alone).

    The wrapper's RUSAGE_CHILDREN covers only this one tool, so figures never mix tools.
    """
    code = ("import resource,subprocess,sys,time;t=time.perf_counter();"
            "r=subprocess.run(sys.argv[1:]).returncode;"
            "print('WALL',time.perf_counter()-t,'RSS',resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1e6);"
            "sys.exit(r)")
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-c", code, *cmd], stdout=f, stderr=subprocess.STDOUT)
    text = log.read_text()
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    line = [ln for ln in text.splitlines() if ln.startswith("WALL")][-1].split()
    return float(line[1]), float(line[3])


def latent_quality(z: np.ndarray, gt: dict) -> dict[str, float]:
    """The ground-truth scores of :func:`cryoscape.analysis.latent.truth_scores` for a simulation's
    ``ground_truth.npz`` contents."""
    from cryoscape.analysis.latent import truth_scores

    return truth_scores(z, t=gt.get("t"), state=gt.get("state"))
