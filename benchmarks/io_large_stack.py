"""Benchmark: open and downsample a huge image stack with bounded memory.

Creates a sparse synthetic .mrcs of --size-gb (default 20 GB; only a few images hold real data,
so it costs little disk), opens it with ImageSource (timed), downsamples it to D/2 through the
real chunked code path and reports wall time, images/s and peak resident memory.

    python benchmarks/io_large_stack.py --size-gb 2 20 [--box 256] [--dir /tmp] [--keep] [--out FILE.json]

The output stack (size/4) is written for real, so the folder needs that much free space.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np

from cryoscape.data.downsample import downsample_stack, fourier_crop
from cryoscape.io.images import ImageSource

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance, save_result

RSS_LIMIT_GB = 2.0


def peak_rss_gb() -> float:
    """Peak resident set size of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def make_sparse_stack(path: Path, size_gb: float, box: int, seed: int = 0) -> tuple[int, dict[int, np.ndarray]]:
    """A stack of ~size_gb whose data block is a hole except a few random images; returns them."""
    n = max(int(size_gb * 1e9) // (box * box * 4), 1)
    rng = np.random.default_rng(seed)
    chosen = sorted({0, n - 1, *rng.integers(0, n, 8).tolist()})
    filled = {int(i): rng.normal(size=(box, box)).astype(np.float32) for i in chosen}
    with mrcfile.new_mmap(path, (n, box, box), mrc_mode=2, overwrite=True) as m:  # truncate: sparse
        m.set_image_stack()
        m.voxel_size = 1.0
        for i, img in filled.items():
            m.data[i] = img
    return n, filled


def run(size_gb: float, box: int, folder: Path, keep: bool) -> dict:
    """One stack: its size, open time, downsampling rate, peak RSS so far and whether the output was right."""
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="cryoscape-bench-", dir=folder))
    try:
        big, out = work / "big.mrcs", work / "small.mrcs"
        t0 = time.perf_counter()
        n, filled = make_sparse_stack(big, size_gb, box)
        print(
            f"created {big} : {n} images of {box} px, {big.stat().st_size / 1e9:.1f} GB apparent, "
            f"{big.stat().st_blocks * 512 / 1e6:.1f} MB on disk ({time.perf_counter() - t0:.1f} s)"
        )
        rss_before = peak_rss_gb()

        t0 = time.perf_counter()
        src = ImageSource.from_file(big)
        t_open = time.perf_counter() - t0
        print(f"open: {t_open * 1e3:.2f} ms for {src.shape}")

        t0 = time.perf_counter()
        psize = downsample_stack(src, out, box // 2)
        wall = time.perf_counter() - t0
        print(
            f"downsample {box}->{box // 2}: {wall:.1f} s, {n / wall:.0f} images/s, "
            f"{n * box * box * 4 / wall / 1e9:.2f} GB/s read; output psize {psize} Å"
        )

        small = ImageSource.from_file(out)
        empty = next(i for i in range(n) if i not in filled) if n > len(filled) else None
        ok = all(
            np.allclose(small[i], fourier_crop(img[None], box // 2)[0], atol=1e-5) for i, img in filled.items()
        ) and (empty is None or not small[empty].any())
        peak = peak_rss_gb()
        print(
            f"peak RSS: {peak:.2f} GB (before opening: {rss_before:.2f} GB); "
            f"< {RSS_LIMIT_GB} GB: {'yes' if peak < RSS_LIMIT_GB else 'NO'}; output correct: {ok}"
        )
        return {
            "size_gb": big.stat().st_size / 1e9,
            "n": n,
            "box": box,
            "open_ms": t_open * 1e3,
            "downsample_s": wall,
            "images_per_s": n / wall,
            "read_gb_per_s": n * box * box * 4 / wall / 1e9,
            "peak_rss_gb": peak,
            "output_correct": bool(ok),
        }
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--size-gb", type=float, nargs="+", default=[20.0], help="apparent size(s) of the input stack (default 20)"
    )
    p.add_argument("--box", type=int, default=256, help="image box in px (default 256)")
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="work folder (default: /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    p.add_argument("--out", type=Path, help="results JSON (rows + command, commit, versions, machine)")
    args = p.parse_args(argv)
    rows = [run(size, args.box, args.dir, args.keep) for size in args.size_gb]  # smallest first: peak RSS is cumulative
    if args.out:
        res = {"kind": "io_large_stack", "rss_limit_gb": RSS_LIMIT_GB, "rows": rows, "provenance": provenance()}
        save_result(args.out, res)
        print(f"results: {args.out}")
    return 0 if all(r["output_correct"] and r["peak_rss_gb"] < RSS_LIMIT_GB for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
