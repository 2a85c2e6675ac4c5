"""Benchmark: train on a particle stack larger than the memory the run is allowed.

Simulates two D = 128 datasets with ``cryoscape simulate`` (the large one --size-gib, default
2.0 GiB of images, and one a quarter of its size), then runs

    cryoscape train STAR --lazy --num-workers K --zdim 8 -n 1 <small model>

on each under a memory limit (default 1 GiB) and prints N, stack size, images/s, epoch time and the
peak memory of the whole process tree (the main process and its DataLoader workers). The stack's
pages are dropped from the page cache before each run, so the epoch reads it from disk.

The limit is enforced by this script: it samples ``/proc/PID/smaps_rollup`` of every process of the
run every 0.1 s and kills the run if the summed PSS (proportional set size: pages shared between
the forked workers and the main process counted once in all) passes the limit. The peak summed
RSS (shared pages counted once per process, an overestimate) is reported too. Where a real cgroup
is available, prefix the command with it, e.g. ``--wrap "systemd-run --scope -p MemoryMax=1G"``.

The model is deliberately small (encoder and decoder 32 wide, 1 hidden layer, 8 encoding
frequencies) and trains 1 epoch (12 minutes in all on 2 loaded CPU cores, simulations included);
the data path does not depend on the model. Needs ~3.5 GB of disk in --dir.

    python benchmarks/train_larger_than_ram.py [--size-gib 2.0] [--limit-gib 1.0] [--num-workers 2]
        [--dir /tmp] [--keep] [--reuse DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

D = 128
HEADER_BYTES = 1024
SMALL_MODEL = ["--enc-width", "32", "--enc-depth", "1", "--dec-width", "32", "--dec-depth", "1", "--pe-dim", "8"]


@dataclass
class TreeMemory:
    """Peak memory of a process and all its descendants, sampled from /proc (bytes)."""

    root: int
    limit_bytes: float = float("inf")
    period_s: float = 0.1
    peak_pss: int = 0
    peak_rss: int = 0
    peak_procs: int = 0
    exceeded: bool = False
    disk_read: dict[int, int] = field(default_factory=dict)  # pid -> bytes fetched from storage
    _stop: threading.Event = field(default_factory=threading.Event)

    def _pids(self) -> list[int]:
        """``root`` and its descendants, from each process's parent in /proc/PID/stat."""
        parent: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, frontier = [self.root], [self.root]
        while frontier:
            frontier = [p for p, pp in parent.items() if pp in frontier]
            tree += frontier
        return tree

    def sample(self) -> None:
        pss = rss = 0
        pids = self._pids()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            pss += int(line.split()[1]) * 1024
                        elif line.startswith("Rss:"):
                            rss += int(line.split()[1]) * 1024
                with open(f"/proc/{pid}/io") as f:
                    self.disk_read[pid] = int(next(ln for ln in f if ln.startswith("read_bytes:")).split()[1])
            except (OSError, StopIteration):  # the process ended between listing and reading
                continue
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        self.peak_procs = max(self.peak_procs, len(pids))
        if pss > self.limit_bytes and not self.exceeded:
            self.exceeded = True
            os.killpg(self.root, signal.SIGKILL)  # the run's own process group (start_new_session)

    def watch(self) -> threading.Thread:
        def loop() -> None:
            while not self._stop.wait(self.period_s):
                self.sample()

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()


def run_measured(
    cmd: list[str], limit_bytes: float = float("inf"), log: Path | None = None
) -> tuple[int, float, TreeMemory]:
    """Run ``cmd`` in its own session (output to ``log``); ``(returncode, wall_s, memory)``."""
    with open(log or os.devnull, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        mem = TreeMemory(proc.pid, limit_bytes)
        watcher = mem.watch()
        rc = proc.wait()
        wall = time.perf_counter() - t0
    mem.stop()
    watcher.join()
    return rc, wall, mem


def drop_page_cache(path: Path) -> None:
    """Write back and evict ``path`` from the page cache, so the next reads come from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def simulate(cryoscape: list[str], n: int, out: Path) -> None:
    stack = out / "particles.mrcs"
    if (out / "particles.star").is_file() and stack.stat().st_size == HEADER_BYTES + n * D * D * 4:
        print(f"reusing {out}")
        return
    cmd = cryoscape + [
        "simulate",
        "--demo",
        "--kind",
        "compositional",
        "-D",
        str(D),
        "-n",
        str(n),
        "--snr",
        "0.1",
        "--seed",
        "0",
        "-o",
        str(out),
    ]
    rc, wall, mem = run_measured(cmd, log=out.with_suffix(".log"))
    if rc:
        sys.exit(f"simulate failed (rc {rc}); see {out.with_suffix('.log')}")
    print(f"simulated {n} images of {D} px in {wall:.0f} s, peak PSS {mem.peak_pss / 2**30:.2f} GiB")


def train(cryoscape: list[str], wrap: list[str], star: Path, run: Path, workers: int, limit_bytes: float) -> dict:
    """One lazy training epoch under the limit; the figures of its row."""
    drop_page_cache(star.parent / "particles.mrcs")
    cmd = (
        wrap
        + cryoscape
        + [
            "train",
            str(star),
            "-o",
            str(run),
            "--zdim",
            "8",
            "-n",
            "1",
            "--lazy",
            "--num-workers",
            str(workers),
            "--overwrite",
            "--seed",
            "0",
            *SMALL_MODEL,
        ]
    )
    print("$", shlex.join(cmd), flush=True)
    rc, wall, mem = run_measured(cmd, limit_bytes, log=run.with_suffix(".log"))
    row = {
        "rc": rc,
        "wall_s": wall,
        "peak_pss": mem.peak_pss,
        "peak_rss": mem.peak_rss,
        "procs": mem.peak_procs,
        "killed": mem.exceeded,
        "disk_gib": sum(mem.disk_read.values()) / 2**30,
        "load": os.getloadavg()[0],
    }
    if rc == 0:
        with open(run / "log.csv") as f:
            last = list(csv.DictReader(f))[-1]
        row.update(epoch_s=float(last["seconds"]), img_s=float(last["images_per_s"]))
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-gib", type=float, default=2.0, help="images in the large stack, GiB (default 2.0)")
    p.add_argument("--limit-gib", type=float, default=1.0, help="memory the run may use, GiB (default 1.0)")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (default 2)")
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="work folder (default /tmp)")
    p.add_argument("--reuse", type=Path, help="a work folder of an earlier --keep run: reuse its datasets")
    p.add_argument("--keep", action="store_true", help="keep the datasets and runs")
    p.add_argument("--wrap", default="", help="command prefix for the training runs (e.g. a cgroup)")
    args = p.parse_args(argv)

    cryoscape = [sys.executable, "-m", "cryoscape.cli.main"]
    work = args.reuse or Path(tempfile.mkdtemp(prefix="cryoscape-bigdata-", dir=args.dir))
    work.mkdir(parents=True, exist_ok=True)
    limit = args.limit_gib * 2**30
    n_big = int(args.size_gib * 2**30) // (D * D * 4)
    rows = []
    try:
        for n in (n_big // 4, n_big):
            sim = work / f"sim_{n}"
            simulate(cryoscape, n, sim)
            row = train(
                cryoscape, shlex.split(args.wrap), sim / "particles.star", work / f"run_{n}", args.num_workers, limit
            )
            row.update(n=n, stack_gib=(sim / "particles.mrcs").stat().st_size / 2**30)
            rows.append(row)
            print_row(row, args.limit_gib)
    finally:
        if args.keep or args.reuse:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args)
    ok = all(r["rc"] == 0 and not r["killed"] for r in rows)
    return 0 if ok else 1


def print_row(r: dict, limit_gib: float) -> None:
    status = "KILLED (over the limit)" if r["killed"] else ("ok" if r["rc"] == 0 else f"failed rc {r['rc']}")
    print(
        f"N {r['n']}: {status}; peak PSS {r['peak_pss'] / 2**30:.3f} GiB (limit {limit_gib} GiB), "
        f"wall {r['wall_s']:.0f} s",
        flush=True,
    )


def print_table(rows: list[dict], args: argparse.Namespace) -> None:
    print(
        f"\nD = {D}, --num-workers {args.num_workers}, 1 epoch, small model; "
        f"limit {args.limit_gib} GiB on the summed PSS of the process tree"
    )
    print(
        "| N | stack GiB | stack / limit | images/s | epoch s | total wall s | read from disk GiB"
        " | peak PSS GiB (tree) | peak RSS GiB (sum) | processes | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    nan = float("nan")
    for r in rows:
        cells = [
            f"{r['n']:,}",
            f"{r['stack_gib']:.2f}",
            f"{r['stack_gib'] / args.limit_gib:.1f}x",
            f"{r.get('img_s', nan):.1f}",
            f"{r.get('epoch_s', nan):.0f}",
            f"{r['wall_s']:.0f}",
            f"{r['disk_gib']:.2f}",
            f"{r['peak_pss'] / 2**30:.3f}",
            f"{r['peak_rss'] / 2**30:.3f}",
            str(r["procs"]),
            f"{r['load']:.1f}",
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        "\nre-run: python benchmarks/train_larger_than_ram.py "
        f"--size-gib {args.size_gib} --limit-gib {args.limit_gib} --num-workers {args.num_workers}"
    )


if __name__ == "__main__":
    sys.exit(main())
