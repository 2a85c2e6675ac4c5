"""CryoBench-protocol benchmark: cryoscape and cryoDRGN on the same data, one scorer, one machine.

CryoBench (Jeon et al., NeurIPS 2024) fixes the regime users care about: SNR 0.01, 128 px, a
1D motion sampled as 100 conformations x 1,000 images (IgG-1D) and a compositional set with many
states of ~10x different abundance (Ribosembly), CTFs with a real dataset's defocus spread and
astigmatism, scored by per-image / per-conformation FSC AUC and latent |Spearman| / ARI. This
script makes such datasets from the demo molecule and runs both tools on them:

  make        cryoscape simulate at --render-D, then Fourier-crop (cryoscape downsample) to each -D;
              cryoDRGN pickles by cryoscape convert
  run         train each tool, measure wall time and peak RSS, score every epoch's latents and the
              final maps (benchmarks/cryobench_score.py), write a results JSON with provenance
  throughput  one short training of each tool per box size: images/s and peak memory
  merge       one results file from runs made side by side (one tool per core), with the time to
              cryoDRGN's final latent metric and per-image AUC together

See benchmarks/README.md, section "CryoBench protocol", for the full commands and the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import measure  # noqa: E402
from provenance import provenance, save_result  # noqa: E402

CRYOSCAPE = [sys.executable, "-m", "cryoscape.cli.main"]
RESULTS = HERE / "results" / "cryobench"
#: Box width in Å for every -D: the demo molecule (110-120 Å) spans ~60% of it, as CryoBench's
#: molecules do of their 384 Å boxes; so 3 Å/px at 64 px and 1.5 Å/px at 128 px.
BOX_A = 192.0
#: cryoDRGN settings: its defaults (1024 x 3, batch 8) and the CPU-best (256 x 3, batch 8)
DRGN = {"cryodrgn-default": [], "cryodrgn-cpu": ["--enc-dim", "256", "--dec-dim", "256", "-b", "8"]}
#: cryoscape settings: its defaults, and the same with autocast off (fp32: what a CPU without bf16 runs)
CRYOSCAPE_VARIANTS = {"cryoscape": [], "cryoscape-fp32": ["--no-amp"]}


def is_cryoscape(tool: str) -> bool:
    """Whether ``tool`` names a cryoscape setting (the rest are cryoDRGN's, :data:`DRGN`); ``merge
    --rename`` may give a trial setting its own ``cryoscape-...`` name."""
    return tool in CRYOSCAPE_VARIANTS or tool.startswith("cryoscape-")


#: Compositional states: (hinge t, extra domain present); 8 states as in a small Ribosembly
STATES = [
    (0.0, True),
    (1 / 3, True),
    (2 / 3, True),
    (1.0, True),
    (0.0, False),
    (1 / 3, False),
    (2 / 3, False),
    (1.0, False),
]
#: Relative abundances spanning 10x (geometric), in an order unrelated to the states' geometry
ABUNDANCE = [10.0, 1.0, 5.18, 1.93, 7.2, 1.39, 3.73, 2.68]


def _run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def write_states(outdir: Path, D: int, psize_A: float) -> list[Path]:
    """The compositional states as maps rendered from the demo molecule (written once)."""
    from cryoscape.io.mrc import write_volume
    from cryoscape.sim.molecule import demo_volume

    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, (t, extra) in enumerate(STATES):
        p = outdir / f"state_{k}.mrc"
        if not p.exists():
            write_volume(p, demo_volume(t, extra, D, psize_A), psize_A)
        paths.append(p)
    return paths


def effective_snr(sim: Path, part: Path, n: int = 200) -> float:
    """SNR of the images the tools get (after Fourier cropping): noise-free images of up to ``n``
    particles remade from the ground truth, cropped like the stack, against the stack.
    White noise loses the cropped-away band and the signal barely any, so this exceeds the SNR
    requested at the render box (by ~(render D / D)^2 at most)."""
    import torch

    from cryoscape.data.downsample import fourier_crop
    from cryoscape.fourier.project import Projector
    from cryoscape.io.mrc import open_stack, read_volume

    gt = np.load(sim / "ground_truth.npz")
    vi = gt["volume_index"]
    # particles of a few volumes only: a projector per volume is the cost at a large render box
    sel = np.flatnonzero(np.isin(vi, vi[:4]))[:n]
    stack = open_stack(part / "particles.mrcs")
    noisy = np.stack([np.asarray(stack[int(i)], np.float64) for i in sel])
    clean = np.empty_like(noisy)
    for k in np.unique(vi[sel]):
        idx = np.flatnonzero(vi[sel] == k)
        vol, psize = read_volume(sim / "gt_volumes" / f"vol_{k:03d}.mrc")
        img = (
            Projector(torch.from_numpy(vol))
            .project(
                torch.from_numpy(gt["rotations"][sel[idx]]).float(),
                torch.from_numpy(gt["shifts_A"][sel[idx]] / psize).float(),
                torch.from_numpy(gt["ctf"][sel[idx]]).float(),
                psize,
            )
            .numpy()
        )
        clean[idx] = fourier_crop(img, noisy.shape[-1]) if img.shape[-1] != noisy.shape[-1] else img
    return float(clean.var() / (noisy - clean).var())


def make(args: argparse.Namespace) -> None:
    out = Path(args.outdir)
    render = args.render_D or 2 * max(args.D)
    if render % 2 or any(d > render for d in args.D):
        sys.exit(f"--render-D {render} must be even and at least every -D {args.D}")
    psize = BOX_A / render
    sim = out / "sim"
    # white noise keeps only (D / render)^2 of its power through the crop, the signal nearly all
    snr = args.snr if args.snr is not None else args.snr_seen * (min(args.D) / render) ** 2
    common = [
        "-n",
        str(args.n),
        "--snr",
        f"{snr:.6g}",
        "--defocus-min",
        "10000",
        "--defocus-max",
        "30000",
        "--astigmatism",
        str(args.astigmatism),
        "--bfactor",
        str(args.bfactor[0]),
        "--bfactor-max",
        str(args.bfactor[1]),
        "--hide-bfactor",
        "--exact-counts",
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "-o",
        str(sim),
    ]
    if args.kind == "continuous":
        cmd = [
            *CRYOSCAPE,
            "simulate",
            "--demo",
            "--kind",
            "continuous",
            "--t-bins",
            str(args.t_bins),
            "-D",
            str(render),
            "--apix",
            f"{psize:.6g}",
            *common,
        ]
    else:
        maps = write_states(out / "states", render, psize)
        cmd = [
            *CRYOSCAPE,
            "simulate",
            *map(str, maps),
            "--kind",
            "compositional",
            "--apix",
            f"{psize:.6g}",
            "--proportions",
            *map(str, ABUNDANCE),
            *common,
        ]
    if not (sim / "simulation.json").exists():
        _run(cmd)
    for D in args.D:
        d = out / f"D{D}"
        d.mkdir(exist_ok=True)
        if not (d / "particles.star").exists():
            if D == render:  # the simulated files themselves (their star names the stack relatively)
                for name in ("particles.mrcs", "particles.star"):
                    (d / name).symlink_to(Path("..") / "sim" / name)
            else:
                _run(
                    [
                        *CRYOSCAPE,
                        "downsample",
                        str(sim / "particles.star"),
                        "-D",
                        str(D),
                        "-o",
                        str(d / "particles.mrcs"),
                    ]
                )
        if not (d / "ctf.pkl").exists():
            _run(
                [
                    *CRYOSCAPE,
                    "convert",
                    str(d / "particles.star"),
                    "--poses-pkl",
                    str(d / "poses.pkl"),
                    "--ctf-pkl",
                    str(d / "ctf.pkl"),
                ]
            )
    snr_seen = {D: effective_snr(sim, out / f"D{D}") for D in args.D}
    print("SNR of the images the tools get: " + ", ".join(f"{D} px {v:.4f}" for D, v in snr_seen.items()))
    rec = {
        "kind": args.kind,
        "n": args.n,
        "render_D": render,
        "render_psize_A": psize,
        "D": args.D,
        "snr_at_render_D": snr,
        "snr_at_D": snr_seen,
        "box_A": BOX_A,
        "simulate_command": cmd,
        "states": STATES if args.kind == "compositional" else None,
        "abundance": ABUNDANCE if args.kind == "compositional" else None,
        "provenance": provenance(),
    }
    save_result(out / "cryobench_data.json", rec)
    print(f"dataset in {out}: sim/ (truth at {render} px), " + ", ".join(f"D{D}/" for D in args.D))


def _data(datadir: Path, D: int | None) -> tuple[Path, Path, int, float]:
    """``(simulation folder, particle folder, D, Å/px)`` of a ``make`` output."""
    rec = json.loads((datadir / "cryobench_data.json").read_text())
    D = D or min(rec["D"])
    return datadir / "sim", datadir / f"D{D}", D, rec["box_A"] / D


def _env(threads: int) -> None:
    """Both tools get the same thread count (cryoDRGN through the OpenMP/MKL variables)."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(threads)


def train_tool(tool: str, part: Path, run: Path, epochs: int, args: argparse.Namespace):
    """Train one tool on ``part`` into ``run``; returns :class:`common.Measured`."""
    if is_cryoscape(tool):
        cmd = [
            *CRYOSCAPE,
            "train",
            str(part / "particles.star"),
            "-o",
            str(run),
            "--overwrite",
            "--zdim",
            str(args.zdim),
            "-n",
            str(epochs),
            "--device",
            args.device,
            "--threads",
            str(args.threads),
            *CRYOSCAPE_VARIANTS[tool],
            *args.cryoscape_args,
        ]
    else:
        if run.exists():  # cryoDRGN appends to an old run.log, whose epoch times would then be read
            shutil.rmtree(run)
        cmd = [
            args.cryodrgn,
            "train_vae",
            str(part / "particles.mrcs"),
            "--poses",
            str(part / "poses.pkl"),
            "--ctf",
            str(part / "ctf.pkl"),
            "--zdim",
            str(args.zdim),
            "-n",
            str(epochs),
            "-o",
            str(run),
            "--no-analysis",
            *DRGN[tool],
        ]
    print("+", " ".join(cmd), flush=True)
    return measure(cmd, run.parent / f"{run.name}.log", args.time_limit), cmd


def run(args: argparse.Namespace) -> None:
    import cryobench_score as score

    from cryoscape.device import resolve_device

    _env(args.threads)
    data = Path(args.data)
    sim, part, D, psize = _data(data, args.D)
    gt = dict(np.load(sim / "ground_truth.npz"))
    metric = "spearman_pc1" if "t" in gt else "ari_kmeans"
    work = Path(args.workdir or data / f"runs_D{D}")
    work.mkdir(parents=True, exist_ok=True)
    per_volume = args.per_volume or (1 if metric == "spearman_pc1" else 16)
    tools = {}
    for tool in args.tools:
        rundir = work / tool
        m, cmd = train_tool(tool, part, rundir, args.epochs, args)
        if is_cryoscape(tool):
            curve = score.curve_cryoscape(rundir, gt)
            maps = curve and score.maps_cryoscape(rundir, sim, per_volume, psize, str(resolve_device(args.device)))
        else:
            curve = score.curve_cryodrgn(rundir, gt)
            maps = curve and score.maps_cryodrgn(args.cryodrgn, rundir, sim, per_volume, psize)
        maps = maps or {}  # a time limit before the first epoch's end leaves nothing to score
        epoch_s = np.diff([0.0] + [t for t, _ in curve])
        tools[tool] = {
            "command": cmd,
            "wall_s": m.wall_s,
            "rss_gb": m.rss_gb,
            "gpu_gb": m.gpu_gb,
            "timed_out": m.timed_out,
            "epochs": len(curve),
            "train_s": curve[-1][0] if curve else None,
            "median_epoch_s": float(np.median(epoch_s)) if curve else None,
            "images_per_s": len(gt["volume_index"]) / float(np.median(epoch_s)) if curve else None,
            "final": curve[-1][1] if curve else {},
            "maps": maps,
            "curve": curve,
        }
        nan = float("nan")
        print(
            f"{tool}: {len(curve)} epochs, {m.wall_s:.0f} s, {m.rss_gb:.2f} GB; {metric} "
            f"{tools[tool]['final'].get(metric, nan):.3f}; per-image AUC {maps.get('perimage_auc', nan):.4f}, "
            f"per-conformation {maps.get('perconf_auc', nan):.4f}",
            flush=True,
        )
    reach = {}
    if "cryoscape" in tools:
        for drgn in (t for t in tools if t.startswith("cryodrgn") and tools[t]["curve"]):
            target = tools[drgn]["final"][metric]
            reach[drgn] = {
                "target": target,
                "cryodrgn_s": tools[drgn]["train_s"],
                "cryoscape_s": score.time_to_reach(tools["cryoscape"]["curve"], metric, target),
            }
    data_rec = json.loads((data / "cryobench_data.json").read_text())
    res = {
        "label": args.label,
        "kind": data_rec["kind"],
        "n": data_rec["n"],
        "D": D,
        "psize_A": psize,
        "render_D": data_rec["render_D"],
        "snr_at_render_D": data_rec["snr_at_render_D"],
        "zdim": args.zdim,
        "epochs": args.epochs,
        "threads": args.threads,
        "metric": metric,
        "per_volume": per_volume,
        "tools": tools,
        "time_to_cryodrgn_final": reach,
        "data": data_rec,
        "provenance": provenance(cryodrgn=args.cryodrgn),
    }
    out = Path(args.out or RESULTS / f"{args.label}_{data_rec['kind']}_n{data_rec['n']}_D{D}.json")
    save_result(out, res)
    print(f"results: {out}")


def merge(args: argparse.Namespace) -> None:
    """One results file from ``run``s of the same dataset made at the same time (one tool per core):
    their tools side by side, and for each cryoscape setting and cryoDRGN setting the training
    time to cryoDRGN's final latent metric, and to it and its final per-image AUC together (maps
    scored at cryoscape's checkpoints from the first epoch at the latent target on)."""
    import cryobench_score as score

    parts = [(Path(f), json.loads(Path(f).read_text())) for f in args.parts]
    for spec in args.rename:  # FILE=NAME: that file's one tool goes by NAME
        f, name = spec.rsplit("=", 1)
        r = next((r for p, r in parts if p == Path(f)), None)
        if r is None or len(r["tools"]) != 1 or not name.startswith("cryoscape-"):
            sys.exit(f"--rename {spec}: needs one of the parts, holding one tool, and a name cryoscape-...")
        r["tools"] = {name: next(iter(r["tools"].values()))}
    first = parts[0][1]
    for f, r in parts[1:]:
        for key in ("kind", "n", "D", "render_D", "snr_at_render_D", "threads", "metric"):
            if r[key] != first[key]:
                sys.exit(f"{f}: {key} {r[key]!r} differs from {parts[0][0]}'s {first[key]!r}")
    tools = {t: x for _, r in parts for t, x in r["tools"].items()}
    metric, data = first["metric"], Path(args.data)
    sim = data / "sim"
    reach: dict = {}
    for drgn in (t for t in tools if not is_cryoscape(t) and tools[t]["curve"]):
        target, target_auc = tools[drgn]["final"][metric], tools[drgn]["maps"]["perimage_auc"]
        per_tool = {}
        for ours in (t for t in tools if is_cryoscape(t)):
            x = tools[ours]
            run_dir = Path(x["command"][x["command"].index("-o") + 1])
            aucs = x.setdefault("perimage_auc_by_epoch", {str(len(x["curve"]) - 1): x["maps"]["perimage_auc"]})
            latent_s, both = score.time_to_reach(x["curve"], metric, target), None
            for e, (t_s, q) in enumerate(x["curve"]):
                if q.get(metric, -np.inf) < target:
                    continue
                if str(e) not in aucs:
                    aucs[str(e)] = score.maps_cryoscape(run_dir, sim, first["per_volume"], first["psize_A"], epoch=e)[
                        "perimage_auc"
                    ]
                    print(f"{ours} epoch {e}: per-image AUC {aucs[str(e)]:.4f}", flush=True)
                if aucs[str(e)] >= target_auc:
                    both = {"epoch": e, "s": t_s, "auc": aucs[str(e)]}
                    break
            per_tool[ours] = {"latent_s": latent_s, "both": both}
        reach[drgn] = {
            "target": target,
            "target_auc": target_auc,
            "cryodrgn_s": tools[drgn]["train_s"],
            "cryoscape_s": per_tool.get("cryoscape", {}).get("latent_s"),
            "by_setting": per_tool,
        }
    res = {
        **{k: v for k, v in first.items() if k not in ("tools", "provenance", "time_to_cryodrgn_final")},
        "label": args.label,
        "epochs": max(r["epochs"] for _, r in parts),  # each tool's own: tools[...]["epochs"]
        "tools": tools,
        "time_to_cryodrgn_final": reach,
        "parts": [{"file": f.name, "tools": list(r["tools"]), "provenance": r["provenance"]} for f, r in parts],
        "provenance": provenance(cryodrgn=args.cryodrgn),
        "note": args.note,
    }
    out = Path(args.out)
    save_result(out, res)
    print(f"results: {out}")


def throughput(args: argparse.Namespace) -> None:
    """Make (or reuse) one dataset with every box, then a short training of each tool per box."""
    _env(args.threads)
    data = Path(args.data)
    if not (data / "cryobench_data.json").exists():
        make(
            argparse.Namespace(
                kind="continuous",
                n=args.n,
                D=args.D,
                render_D=max(args.D),
                outdir=str(data),
                snr=None,
                snr_seen=0.01,
                astigmatism=1000.0,
                bfactor=[0.0, 100.0],
                seed=0,
                threads=args.threads,
                t_bins=4,
            )
        )  # speed does not depend on the conformations; fewer maps to render
    rows = []
    for D in args.D:
        _sim, part, D, _ = _data(data, D)
        for tool in args.tools:
            rundir = data / f"throughput_D{D}" / tool
            rundir.parent.mkdir(exist_ok=True)
            t0 = time.time()
            m, cmd = train_tool(tool, part, rundir, 1, args)
            rows.append(
                {
                    "tool": tool,
                    "D": D,
                    "n": args.n,
                    "wall_s": m.wall_s,
                    "cpu_s": m.cpu_s,
                    "rss_gb": m.rss_gb,
                    "gpu_gb": m.gpu_gb,
                    "timed_out": m.timed_out,
                    "images_per_s": _epoch_rate(tool, rundir, args.n),
                    "command": cmd,
                    "started": t0,
                }
            )
            print(f"D {D} {tool}: {rows[-1]['images_per_s']} img/s, {m.rss_gb:.2f} GB", flush=True)
    res = {"label": args.label, "rows": rows, "threads": args.threads, "provenance": provenance(cryodrgn=args.cryodrgn)}
    out = Path(args.out or RESULTS / f"{args.label}_throughput_n{args.n}.json")
    save_result(out, res)
    print(f"results: {out}")


def _epoch_rate(tool: str, rundir: Path, n: int) -> float | None:
    """Images per second of the first epoch from the tool's own log (None if it did not finish)."""
    import re

    if is_cryoscape(tool):
        import csv

        with open(rundir / "log.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return n / float(rows[0]["seconds"]) if rows else None
    times = re.findall(r"Epoch: \d+ .*?Finished in (\d+):(\d+):([\d.]+)", (rundir / "run.log").read_text())
    return n / (int(times[0][0]) * 3600 + int(times[0][1]) * 60 + float(times[0][2])) if times else None


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--tools",
        type=lambda s: s.split(","),
        default=["cryoscape", "cryodrgn-cpu", "cryodrgn-default"],
        help="comma-separated: cryoscape, cryoscape-fp32, cryodrgn-cpu, cryodrgn-default",
    )
    p.add_argument("--cryodrgn", default="/work/venv-cryodrgn/bin/cryodrgn", help="cryodrgn executable")
    p.add_argument("--zdim", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for each tool")
    p.add_argument("--device", default="auto", help="cryoscape --device (cryoDRGN takes CUDA when present)")
    p.add_argument("--time-limit", type=float, default=0.0, help="stop each tool after this many s (0: none)")
    p.add_argument(
        "--cryoscape-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="extra cryoscape train options (last on the line)",
    )
    p.add_argument("--label", default="run", help="results file name prefix (e.g. smoke, full)")
    p.add_argument("--out", help="results JSON (default: benchmarks/results/cryobench/LABEL_...json)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make", help="simulate and downsample a CryoBench-protocol dataset")
    p.add_argument("--kind", choices=("continuous", "compositional"), required=True)
    p.add_argument("-n", type=int, required=True, help="particles (continuous: a multiple of 100)")
    p.add_argument("-D", type=int, nargs="+", default=[128], help="box(es) to train at (default 128)")
    p.add_argument("--render-D", type=int, help="box to simulate at (default: 2 x the largest -D)")
    p.add_argument(
        "--snr-seen",
        type=float,
        default=0.01,
        help="SNR of the images at the smallest -D, as the tools see them (default: CryoBench's "
        "0.01); the render box gets snr_seen * (D / render_D)^2",
    )
    p.add_argument("--snr", type=float, help="SNR at the render box instead (overrides --snr-seen)")
    p.add_argument("--astigmatism", type=float, default=1000.0, help="max |dfu - dfv| in Å")
    p.add_argument(
        "--bfactor",
        type=float,
        nargs=2,
        default=[0.0, 100.0],
        metavar=("MIN", "MAX"),
        help="per-particle envelope B-factor range in Å^2, hidden from the tools",
    )
    p.add_argument("--t-bins", type=int, default=100, help="continuous: conformations (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--outdir", required=True)
    p = sub.add_parser("run", help="train every tool on a made dataset and score them")
    p.add_argument("--data", required=True, help="folder written by make")
    p.add_argument("-D", type=int, help="which box of the dataset (default: the smallest)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--per-volume", type=int, help="maps per conformation (default 1 continuous, 16 states)")
    p.add_argument("--workdir", help="run folders (default DATA/runs_D<D>)")
    _train_args(p)
    p = sub.add_parser("throughput", help="one epoch of each tool per box size: images/s, peak memory")
    p.add_argument("--data", required=True, help="dataset folder (made here if absent)")
    p.add_argument("--D", "-D", type=int, nargs="+", default=[128, 256])
    p.add_argument("-n", type=int, default=2000)
    _train_args(p)
    p = sub.add_parser("merge", help="one results file from runs of the same data made side by side")
    p.add_argument("parts", nargs="+", help="results files of run")
    p.add_argument("--data", required=True, help="the dataset folder the runs used (for scoring checkpoints)")
    p.add_argument("--label", default="full")
    p.add_argument(
        "--rename",
        nargs="*",
        default=[],
        metavar="FILE=NAME",
        help="a part holding one trial cryoscape setting: its tool goes by NAME (cryoscape-...)",
    )
    p.add_argument("--note", default="", help="how the parts ran (cores, times), kept in the file")
    p.add_argument("--cryodrgn", default="/work/venv-cryodrgn/bin/cryodrgn", help="cryodrgn executable (its version)")
    p.add_argument("-o", "--out", required=True)
    args = ap.parse_args()
    {"make": make, "run": run, "throughput": throughput, "merge": merge}[args.cmd](args)


if __name__ == "__main__":
    main()
