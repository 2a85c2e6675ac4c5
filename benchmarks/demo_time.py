"""Wall time, peak memory and result of `cryoscape demo` (the README's first command) on this machine.

Runs the demo as a user would (its defaults unless arguments are given after ``--``), measured
by benchmarks/common.py, and records the score it prints. ``--no-amp`` passes to the demo: on a
CPU with native bf16 it shows what a CPU without it gets (cryoscape trains in fp32 there).

Usage: python benchmarks/demo_time.py -o results/cpu/demo_fp32.json -- --no-amp
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import measure
from provenance import provenance, save_result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("demo_args", nargs="*", help="arguments for cryoscape demo (after --)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="demo_time_"))
    cmd = [sys.executable, "-m", "cryoscape.cli.main", "demo", "-o", str(work / "demo"), *args.demo_args]
    m = measure(cmd, work / "demo.log")
    text = (work / "demo.log").read_text()
    score = re.search(r"(\|Spearman\|[^:]*|adjusted Rand index[^:]*): ([\d.]+)", text)
    epochs = re.findall(r"epoch (\d+): .*\(([\d.]+) s, (\d+) img/s\)", text)
    res = {
        "provenance": provenance(),
        "demo_args": args.demo_args,
        "wall_s": m.wall_s,
        "rss_gb": m.rss_gb,
        "score_name": score.group(1) if score else None,
        "score": float(score.group(2)) if score else None,
        "epochs": [{"epoch": int(e), "seconds": float(s), "images_per_s": int(r)} for e, s, r in epochs],
    }
    save_result(args.out, res)
    print(
        f"demo {' '.join(args.demo_args)}: {m.wall_s:.0f} s wall, {m.rss_gb:.2f} GB peak RSS, "
        f"{res['score_name']}: {res['score']}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
