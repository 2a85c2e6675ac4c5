"""Helpers shared by the benchmark scripts: run a tool and measure it, score latents and maps."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Wrapper run around each tool: its RUSAGE_CHILDREN covers that one tool alone, and a time
#: limit ends the tool (SIGTERM, then SIGKILL) while still reporting what it used.
_WRAPPER = """
import resource, subprocess, sys, time
limit = float(sys.argv[1]) or None
t = time.perf_counter()
p = subprocess.Popen(sys.argv[2:])
try:
    r = p.wait(timeout=limit)
except subprocess.TimeoutExpired:
    p.terminate()
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    print("TIMEOUT after", limit, "s", flush=True)
    r = 0
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print("WALL", time.perf_counter() - t, "RSS", u.ru_maxrss / 1e6, "CPU", u.ru_utime + u.ru_stime)
sys.exit(r)
"""


@dataclass(frozen=True)
class Measured:
    """What one tool's run cost: wall seconds, peak RSS (GB) of the tool's process, peak GPU memory
    in use on the device while it ran minus what was in use before (GB; None without a GPU),
    whether the time limit stopped it, and the CPU seconds (user + system) of the tool's processes:
    the work done, which other jobs on a shared machine change far less than they change the wall
    time."""

    wall_s: float
    rss_gb: float
    gpu_gb: float | None
    timed_out: bool
    cpu_s: float | None = None


def _gpu_used_mib() -> float | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
        return float(out.split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


class _GPUSampler(threading.Thread):
    """Samples the device's memory in use twice a second (only one tool runs at a time)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.base, self.peak, self.stop = _gpu_used_mib(), 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, _gpu_used_mib() or 0.0)

    def result_gb(self) -> float | None:
        return None if self.base is None else max(0.0, self.peak - self.base) / 1024


def measure(cmd: list[str], log: Path, time_limit_s: float = 0.0) -> Measured:
    """Run ``cmd`` (output to ``log``) and measure it; ``time_limit_s > 0`` stops it after that long."""
    sampler = _GPUSampler()
    sampler.start()
    with open(log, "w") as f:
        proc = subprocess.run(
            [sys.executable, "-c", _WRAPPER, str(time_limit_s), *cmd], stdout=f, stderr=subprocess.STDOUT, check=False
        )
    sampler.stop.set()
    sampler.join()
    text = log.read_text()
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{text[-2000:]}")
    line = [ln for ln in text.splitlines() if ln.startswith("WALL")][-1].split()
    cpu = float(line[5]) if len(line) > 5 else None
    return Measured(float(line[1]), float(line[3]), sampler.result_gb(), "TIMEOUT after" in text, cpu)


def run_measured(cmd: list[str], log: Path) -> tuple[float, float]:
    """``(wall s, peak RSS GB)`` of ``cmd`` run to completion (see :func:`measure`)."""
    m = measure(cmd, log)
    return m.wall_s, m.rss_gb


def latent_quality(z: np.ndarray, gt: dict) -> dict[str, float]:
    """The ground-truth scores of :func:`cryoscape.analysis.latent.truth_scores` for a simulation's
    ``ground_truth.npz`` contents."""
    from cryoscape.analysis.latent import truth_scores

    return truth_scores(z, t=gt.get("t"), state=gt.get("state"))


def perimage_cryoscape(
    run: Path, sim: Path, n_sample: int, device: str = "cpu", epoch: int | None = None
) -> dict[str, float]:
    """Per-image FSC (mean AUC, mean resolution at 0.5) of a cryoscape run's checkpoint of
    ``epoch`` (None: the last)."""
    from cryoscape.analysis.perimage import evaluate_run
    from cryoscape.analysis.volumes import load_run

    trained = load_run(run, epoch, device=device)
    z = np.load(run / ("z.npy" if epoch is None else f"z.{epoch}.npy"))
    return evaluate_run(trained, z, sim, n_sample=n_sample).summary()


def cryodrgn_last_codes(run: Path) -> tuple[int, np.ndarray]:
    """``(epoch, z)``: a cryoDRGN run's last saved epoch and its latent codes (z.<e>.pkl)."""
    epoch = max(int(p.stem.split(".")[1]) for p in run.glob("weights.*.pkl"))
    with open(run / f"z.{epoch}.pkl", "rb") as f:
        return epoch, np.asarray(pickle.load(f))


def cryodrgn_maps(cryodrgn: str, run: Path, epoch: int, z: np.ndarray, tag: str, psize_A: float):
    """Maps of cryoDRGN's own decoder (``cryodrgn eval_vol``, weights of ``epoch``) at the codes
    ``z: (M, zdim)``, written under ``run/<tag>.<epoch>``; yields them as float32 arrays in order."""
    import mrcfile

    voldir, zfile = run / f"{tag}.{epoch}", run / f"{tag}.{epoch}.z.txt"
    np.savetxt(zfile, z)
    subprocess.run(
        [
            cryodrgn,
            "eval_vol",
            str(run / f"weights.{epoch}.pkl"),
            "-c",
            str(run / "config.yaml"),
            "--zfile",
            str(zfile),
            "-o",
            str(voldir),
            "--Apix",
            str(psize_A),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return (mrcfile.read(voldir / f"vol_{i + 1:03d}.mrc").astype(np.float32) for i in range(len(z)))


def perimage_cryodrgn(cryodrgn: str, run: Path, sim: Path, n_sample: int, psize_A: float) -> dict[str, float]:
    """The same scorer for a cryoDRGN run: its last epoch's codes, maps from its own decoder
    (``cryodrgn eval_vol``) at the same sampled particles, against the same ground truth."""
    from cryoscape.analysis.perimage import (
        per_image_fsc,
        read_ground_truth,
        sample_indices,
    )

    epoch, z = cryodrgn_last_codes(run)
    ind = sample_indices(len(z), n_sample)
    maps = cryodrgn_maps(cryodrgn, run, epoch, z[ind], "perimage", psize_A)
    gt = read_ground_truth(sim)
    return per_image_fsc(maps, ind, gt.volume_index, gt.load, psize_A).summary()
