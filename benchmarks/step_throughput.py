"""Images per second of one cryoscape training step, per box, batch, number format, host allocator,
decoder width and share of sampled high frequencies.

Each setting runs in a fresh process (the allocator setting is process-wide and cannot be undone):
the default model (zdim 8, encoder and decoder 256 x 3) takes Adam steps on random images with
random poses and a CTF, after warm-up steps; ``--threads`` torch threads. This isolates the
step's arithmetic from reading particles, so it is the per-image work that the training figures
divide into wall time; each row also records the process's peak RSS. Writes a JSON with the
command, commit, versions and machine.

Usage:
    python benchmarks/step_throughput.py -D 64 128 --batch 8 32 --threads 1 -o results/cpu/step_throughput.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance, save_result

_STEP = """
import json, resource, sys, time
import torch
sys.path.insert(0, sys.argv[9])
from cryoscape.device import tune_cpu_allocator
from step_setup import training_step
D, B, fmt, tuned = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
threads, images, width, hf = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
max_points = int(sys.argv[10]) or None
torch.set_num_threads(threads)
took = tune_cpu_allocator() if tuned else False
step = training_step(D, B, fmt, hf, width, max_points)
for _ in range(3):
    step()
n = max(3, images // B)
t = time.perf_counter()
for _ in range(n):
    step()
print(json.dumps({"images_per_s": n * B / (time.perf_counter() - t), "allocator_tuned": took,
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-D", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--formats", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16"))
    ap.add_argument("--dec-width", type=int, nargs="+", default=[256], help="decoder hidden widths")
    ap.add_argument(
        "--hf-sample",
        type=float,
        nargs="+",
        default=[1.0],
        help="shares of the coefficients beyond the core fitted per step (train --hf-sample)",
    )
    ap.add_argument(
        "--max-points",
        type=int,
        nargs="+",
        default=[0],
        help="most decoder points per chunk of a step (train --max-points); 0: the whole batch at once",
    )
    ap.add_argument("--allocator", nargs="+", default=["default", "tuned"], choices=("default", "tuned"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--images", type=int, default=256, help="images timed per setting (after 3 warm-up steps)")
    ap.add_argument("-o", "--out", required=True, help="results JSON")
    args = ap.parse_args()
    rows = []
    print(
        "| D | decoder width | hf share | batch | max points | format | allocator | img/s | peak RSS GB |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    for D, width, hf, B, mp, fmt, alloc in itertools.product(
        args.D, args.dec_width, args.hf_sample, args.batch, args.max_points, args.formats, args.allocator
    ):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _STEP,
                str(D),
                str(B),
                fmt,
                str(int(alloc == "tuned")),
                str(args.threads),
                str(args.images),
                str(width),
                str(hf),
                str(Path(__file__).resolve().parent),
                str(mp),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = {"D": D, "dec_width": width, "hf_sample": hf, "batch": B, "max_points": mp, "format": fmt}
        r.update(json.loads(out.splitlines()[-1]))
        rows.append(r)
        print(
            f"| {D} | {width} | {hf:g} | {B} | {mp or 'all'} | {fmt} | "
            f"{'tuned' if r['allocator_tuned'] else 'default'} | "
            f"{r['images_per_s']:.1f} | {r['peak_rss_gb']:.2f} |",
            flush=True,
        )
    save_result(args.out, {"provenance": provenance(), "settings": vars(args), "rows": rows})
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
