"""Where one cryoscape training step spends its time, and how much work an image is.

Profiles Adam steps of the default model (zdim 8, encoder and decoder 256 x 3) on random images
with random poses and a CTF, as ``step_throughput.py`` times them, with ``torch.profiler``; the
operators' self CPU time is grouped into the decoder's matrix products, its activations (forward
and backward), FFTs, the optimizer and everything else. Also records the work per image that the
profile divides: the lattice points the loss fits per image (all of the half-lattice inside
Nyquist, or the sampled share) and the decoder's multiply-adds per point, per layer. Writes a JSON
with the command, commit, versions and machine.

Usage:
    python benchmarks/profile_step.py -D 128 --batch 32 --threads 1 -o results/cpu/profile_step_128.json
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance, save_result
from step_setup import training_step

#: operator name fragments -> group (first match wins; names are aten's)
GROUPS = (
    ("matmul", ("addmm", "aten::mm", "bmm", "linear", "matmul")),
    ("activation", ("relu", "clamp_min", "threshold_backward", "gelu", "silu")),  # relu runs as clamp_min
    ("fft", ("fft",)),
    ("optimizer", ("adam", "_foreach", "lerp", "addcdiv", "addcmul")),
)


def _group(name: str) -> str:
    low = name.lower()
    return next((g for g, keys in GROUPS if any(k in low for k in keys)), "other")


def work_per_image(D: int, hf_sample: float) -> dict:
    """Points fitted per image and the decoder's multiply-adds per point (default architecture)."""
    from cryoscape.data.preprocess import Preprocessor
    from cryoscape.model.config import ModelConfig
    from cryoscape.model.vae import ReconModel
    from cryoscape.train.config import SAMPLE_CORE

    half = Preprocessor(D, 1.0).half
    n_all, n_core = half.count_within(1.0), half.count_within(SAMPLE_CORE)
    fitted = n_core + hf_sample * (n_all - n_core)
    model = ReconModel(ModelConfig(D=D, zdim=8))
    layers = [m for m in model.decoder.modules() if m.__class__.__name__ == "Linear"]
    macs = [m.in_features * m.out_features for m in layers]
    return {
        "points_half_lattice": int(n_all),
        "points_core": int(n_core),
        "points_fitted": float(fitted),
        "fitted_share": float(fitted / n_all),
        "decoder_macs_per_point": int(sum(macs)),
        "decoder_layer_macs": macs,
        "first_layer_share": float(macs[0] / sum(macs)),
    }


def profile(D: int, B: int, fmt: str, hf: float, steps: int) -> dict:
    """Share of the step's self CPU time per operator group, and the step's wall time."""
    import time

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = training_step(D, B, fmt, hf)
    for _ in range(2):
        step()
    t = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - t) / steps
    totals: dict[str, float] = {}
    for ev in prof.key_averages():
        g = _group(ev.key)
        totals[g] = totals.get(g, 0.0) + ev.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    top = [
        e
        for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        if e.self_cpu_time_total > 0.005 * whole
    ]
    return {
        "D": D,
        "batch": B,
        "format": fmt,
        "hf_sample": hf,
        "step_s_profiled": wall,
        "shares": {g: v / whole for g, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        "top_ops": [{"op": e.key, "share": e.self_cpu_time_total / whole} for e in top],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-D", type=int, nargs="+", default=[128])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--formats", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    ap.add_argument("--hf-sample", type=float, nargs="+", default=[1.0, 0.35])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="profiled steps per setting (after 2 warm-up steps)")
    ap.add_argument("-o", "--out", required=True, help="results JSON")
    args = ap.parse_args()
    import torch

    from cryoscape.device import tune_cpu_allocator

    torch.set_num_threads(args.threads)
    tune_cpu_allocator()  # as training does
    work = {str(D): {f"{hf:g}": work_per_image(D, hf) for hf in args.hf_sample} for D in args.D}
    rows = []
    for D, fmt, hf in itertools.product(args.D, args.formats, args.hf_sample):
        r = profile(D, args.batch, fmt, hf, args.steps)
        rows.append(r)
        shares = ", ".join(f"{g} {v:.0%}" for g, v in r["shares"].items())
        print(f"D {D} {fmt} hf {hf:g}: {r['step_s_profiled']:.2f} s/step; {shares}", flush=True)
    save_result(args.out, {"provenance": provenance(), "settings": vars(args), "work_per_image": work, "rows": rows})
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
