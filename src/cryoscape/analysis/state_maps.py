"""``cryoscape states``: discrete states of a run, each with its particles, its own half-map
reconstruction and gold-standard FSC, and the decoder's map beside it.

Steps: junk is scored and (by default) left out (:mod:`cryoscape.analysis.junk`); K is chosen on
the remaining codes (:mod:`cryoscape.analysis.states`); per state, the particles are written as
star/cs subsets and index pickles (:func:`cryoscape.analysis.select.write_selection`),
backprojected into two half-maps and a full map (:mod:`cryoscape.recon.backproject`) whose
masked half-map FSC gives the resolution at 0.143, and the decoder's map at the state's on-data
centre is written with the FSC between it and the backprojection. ``states.json`` and
``report.md`` / ``report.html`` summarise; file names are in docs/states.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cryoscape.analysis.junk import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from cryoscape.analysis.run_data import RunData


@dataclass(frozen=True)
class StatesConfig:
    """What ``cryoscape states`` is told (see its help)."""

    k: int | None = None  # fixed number of states; None: chosen by `criterion`
    kmax: int = 10
    criterion: str = "icl"
    exclude_junk: bool = True
    junk_threshold: float = DEFAULT_THRESHOLD
    epoch: int | None = None
    seed: int = 0
    device: str = "cpu"


def _state_maps(rd: RunData, ind: np.ndarray, zc: np.ndarray, folder: Path, seed: int, device: str) -> dict:
    """Backprojected half-maps + full map, masked FSC, decoder map and map-vs-decoder FSC of one state."""
    from cryoscape.analysis.fsc import auto_mask, fsc, plot_fsc, resolution_at
    from cryoscape.analysis.volumes import generate_volumes
    from cryoscape.io.mrc import write_volume
    from cryoscape.recon.backproject import (
        BackprojectConfig,
        posed_stack,
        reconstruct_halves,
        split_halves,
        write_reconstruction,
    )

    folder.mkdir(parents=True, exist_ok=True)
    sub = rd.pset.subset(ind)
    cfg = BackprojectConfig(use_ctf=rd.use_ctf, invert=rd.sign < 0, device=device)
    rec = reconstruct_halves(posed_stack(sub, rd.use_ctf), cfg, split_halves(len(ind), seed))
    write_reconstruction(rec, folder / "backproject.mrc")
    psize = rec.psize_A
    freqs, masked = fsc(rec.half1, rec.half2, auto_mask(rec.full, psize))
    dec = next(generate_volumes(rd.run.model, zc[None], scale=rd.run.norm_std))
    if rd.sign < 0:
        dec = -dec  # the decoder fits sign-flipped images: back to the particles' contrast
    write_volume(folder / "decoder.mrc", np.ascontiguousarray(dec, np.float32), psize)
    _, vs_dec = fsc(rec.full, dec, auto_mask(rec.full, psize))
    plot_fsc(folder / "decoder_fsc.png", freqs, {"backprojection vs decoder (masked)": vs_dec}, psize)
    return {
        "res_0143_A": resolution_at(freqs, masked, 0.143, psize),
        "res_05_A": resolution_at(freqs, masked, 0.5, psize),
        "res_vs_decoder_05_A": resolution_at(freqs, vs_dec, 0.5, psize),
    }


def run_states(run_dir: str | Path, outdir: str | Path, cfg: StatesConfig) -> dict:
    """Do every step of the module docstring for ``run_dir`` into ``outdir``; returns states.json's content."""
    from cryoscape.analysis.junk import score_run, write_junk
    from cryoscape.analysis.run_data import load_run_data
    from cryoscape.analysis.select import complement, load_source, write_selection
    from cryoscape.analysis.states import choose_k, plot_evidence, state_centre
    from cryoscape.io.atomic import atomic_write_bytes
    from cryoscape.io.runlock import run_lock

    outdir = Path(outdir)
    rd = load_run_data(run_dir, cfg.epoch, cfg.device)
    with run_lock(outdir, "states"):
        js = score_run(rd, cfg.junk_threshold)
        write_junk(outdir, js)
        keep = np.flatnonzero(~js.junk) if cfg.exclude_junk else np.arange(len(rd.z))
        source = load_source(rd.rp)
        formats = (".star", ".cs") if source is not None else None
        subsets = outdir / "subsets"
        write_selection("keep", keep, subsets, rd.rp, source, formats)
        write_selection("junk", complement(keep, len(rd.z)), subsets, rd.rp, source, formats)
        print(f"junk: {len(rd.z) - len(keep)} of {len(rd.z)} particles left out", file=sys.stderr)
        sc = choose_k(rd.z[keep], cfg.kmax, cfg.k, cfg.criterion, cfg.seed)
        plot_evidence(outdir / "states_evidence.png", sc)
        labels = np.full(len(rd.z), -1, np.int64)
        labels[keep] = sc.labels
        np.save(outdir / "state_labels.npy", labels)
        states = []
        for s in range(sc.k):
            ind = np.flatnonzero(labels == s)
            zc = rd.z[ind][state_centre(rd.z[ind])]
            write_selection(f"state_{s:02d}", ind, subsets, rd.rp, source, formats)
            print(f"state {s}: {len(ind)} particles, reconstructing", file=sys.stderr)
            maps = _state_maps(rd, ind, zc, outdir / f"state_{s:02d}", cfg.seed + s, cfg.device)
            states.append({"state": s, "n": len(ind), "share": len(ind) / len(keep), "z_centre": zc.tolist(), **maps})
        summary = {
            "config": asdict(cfg),
            "run": str(Path(run_dir).resolve()),
            "epoch": rd.epoch,
            "psize_A": rd.pset.apix,
            "junk": js.summary(),
            "k": sc.k,
            "k_fixed": cfg.k is not None,
            "criterion": cfg.criterion,
            "ks": sc.ks.tolist(),
            "bic": sc.bic.tolist(),
            "icl": sc.icl.tolist(),
            "states": states,
        }
        atomic_write_bytes(outdir / "states.json", (json.dumps(summary, indent=1) + "\n").encode())
        write_report(outdir, summary)
    return summary


def _report_rows(summary: dict) -> list[str]:
    rows = [
        "| state | particles | share | FSC 0.143 (masked) | FSC 0.5 | vs decoder (0.5) |",
        "|---|---|---|---|---|---|",
    ]
    for s in summary["states"]:
        rows.append(
            f"| {s['state']} | {s['n']} | {100 * s['share']:.1f}% | {s['res_0143_A']:.2f} Å | {s['res_05_A']:.2f} Å "
            f"| {s['res_vs_decoder_05_A']:.2f} Å |"
        )
    return rows


def write_report(outdir: Path, summary: dict) -> None:
    """``report.md`` and a plain ``report.html`` with the same content and the figures."""
    import html

    from cryoscape.io.atomic import atomic_write_bytes

    j = summary["junk"]
    how = "fixed with --k" if summary["k_fixed"] else f"chosen by {summary['criterion'].upper()} (lowest)"
    lines = [
        "# States",
        "",
        f"Junk: {j['n_junk']} of {j['n']} particles above a score of {j['threshold']:g} robust σ "
        "(`junk_scores.png`, `subsets/junk.*`).",
        "",
        f"K = {summary['k']} states, {how}; evidence in `states_evidence.png`.",
        "",
        *_report_rows(summary),
        "",
        "Per state: `state_NN/backproject.mrc` (+ half-maps, FSC), `state_NN/decoder.mrc`, `subsets/state_NN.*`.",
    ]
    atomic_write_bytes(outdir / "report.md", ("\n".join(lines) + "\n").encode())
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r.strip("|").split("|")) + "</tr>"
        for r in _report_rows(summary)
        if not r.startswith("|---")
    )
    figs = ["states_evidence.png", "junk_scores.png"] + [
        f"state_{s['state']:02d}/backproject_fsc.png" for s in summary["states"]
    ]
    body = (
        f"<h1>States</h1><p>{html.escape(lines[2])}</p><p>{html.escape(lines[4])}</p><table border=1>{table}</table>"
        + "".join(f'<figure><img src="{f}"><figcaption>{f}</figcaption></figure>' for f in figs)
    )
    head = "<meta charset='utf-8'><title>cryoscape states</title>"
    page = f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
    atomic_write_bytes(outdir / "report.html", page.encode())
