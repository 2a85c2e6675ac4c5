"""Peak memory (and CPU time) of short `cryoscape train` runs, per number format and option set,
optionally also for an older commit of the code (run from a temporary git worktree).

Why: a run's peak RSS is a user-facing limit and depends on more than the model's activations
(cached kernels per tensor shape, heap fragmentation), so it is measured on whole runs, each in
its own process, on one dataset. Writes a JSON with the command, commit, versions and machine.

Usage:
    python benchmarks/train_memory.py --data SIM_DIR -n 3 --variants "" "--freq-march 0" \
        [--git-ref HEAD~1] -o results/cpu/train_memory_3k.json
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import measure  # noqa: E402
from provenance import provenance, save_result  # noqa: E402


def _worktree(ref: str, where: Path) -> Path:
    """A checkout of ``ref`` (its ``src`` goes first on PYTHONPATH for that code's runs)."""
    subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", str(where), ref], check=True)
    return where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a simulate output folder (particles.star)")
    ap.add_argument("-n", "--epochs", type=int, default=3)
    ap.add_argument("--formats", nargs="+", default=["bf16", "fp32"], choices=("bf16", "fp32"))
    ap.add_argument("--variants", nargs="+", default=[""], help="extra train options per variant ('' = defaults)")
    ap.add_argument("--git-ref", help="also run every variant with this commit's code")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--out", required=True, help="results JSON")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="train_memory_"))
    codes: list[tuple[str, Path | None]] = [("current", None)]
    if args.git_ref:
        commit = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", args.git_ref], capture_output=True, text=True, check=True
        ).stdout.strip()
        codes.append((commit, _worktree(commit, work / "code")))
    rows = []
    try:
        for (code, tree), fmt, variant in ((c, f, v) for c in codes for f in args.formats for v in args.variants):
            run = work / f"run_{len(rows)}"
            cmd = [sys.executable, "-m", "cryoscape.cli.main", "train", str(Path(args.data) / "particles.star")]
            cmd += ["-o", str(run), "--zdim", "8", "-n", str(args.epochs), "--threads", str(args.threads)]
            cmd += ["--amp" if fmt == "bf16" else "--no-amp", *shlex.split(variant)]
            if tree is not None:  # that commit's code first on the path
                cmd = ["env", f"PYTHONPATH={tree / 'src'}", *cmd]
            m = measure(cmd, work / f"run_{len(rows)}.log")
            rows.append(
                {
                    "code": code,
                    "format": fmt,
                    "options": variant,
                    "epochs": args.epochs,
                    "wall_s": m.wall_s,
                    "cpu_s": m.cpu_s,
                    "rss_gb": m.rss_gb,
                }
            )
            print(f"{code[:9]} {fmt} [{variant}]: peak RSS {m.rss_gb:.2f} GB, CPU {m.cpu_s:.0f} s", flush=True)
    finally:
        if args.git_ref:
            subprocess.run(
                ["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(work / "code")], check=False
            )
    save_result(args.out, {"provenance": provenance(), "settings": vars(args), "rows": rows})
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
