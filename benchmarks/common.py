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
    """|Spearman| of latent PC1 vs the true coordinate ``t``; ARI of k-means vs the true ``state``."""
    from scipy.stats import spearmanr
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    out = {}
    if "t" in gt and len(np.unique(gt["t"])) > 2:
        pc1 = PCA(1).fit_transform(z)[:, 0]
        out["spearman_pc1"] = float(abs(spearmanr(pc1, gt["t"]).statistic))
    if "state" in gt and len(np.unique(gt["state"])) > 1:
        k = len(np.unique(gt["state"]))
        labels = KMeans(k, n_init=10, random_state=0).fit_predict(z)
        out["ari_kmeans"] = float(adjusted_rand_score(gt["state"], labels))
    return out
