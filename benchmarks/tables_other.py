"""Tables of benchmarks/README.md outside the training sections: one training step's profile and
work per image, backprojection side by side with cryoDRGN, and reading large stacks.

Each function turns a committed results file (benchmarks/results/cpu/...) into markdown lines;
benchmarks/make_tables.py writes them between the section's markers and checks them in CI.
"""

from __future__ import annotations

from pathlib import Path

from tables_regime import _load, _source


def profile_tables(path: Path, root: Path) -> list[str]:
    """Work per image (points fitted, multiply-adds per point) and the step's time per operator group."""
    r = _load(path)
    lines = [
        "| box | share fitted (`--hf-sample`) | half-lattice points | points fitted per image | share of the points | "
        "decoder multiply-adds per point | first layer's share |",
        "|---|---|---|---|---|---|---|",
    ]
    for D, by_hf in r["work_per_image"].items():
        for hf, w in by_hf.items():
            lines.append(
                f"| {D} | {hf} | {w['points_half_lattice']:,} | {w['points_fitted']:,.0f} | {w['fitted_share']:.0%} | "
                f"{w['decoder_macs_per_point']:,} | {w['first_layer_share']:.0%} |"
            )
    groups = sorted({g for x in r["rows"] for g in x["shares"]}, key=lambda g: (g == "other", g))
    lines += [
        "",
        "| box | batch | format | share fitted | s per step (profiled) | "
        + " | ".join(f"{g} share" for g in groups)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(groups),
    ]
    for x in r["rows"]:
        shares = " | ".join(f"{x['shares'].get(g, 0.0):.0%}" for g in groups)
        lines.append(
            f"| {x['D']} | {x['batch']} | {x['format']} | {x['hf_sample']:g} | {x['step_s_profiled']:.2f} | {shares} |"
        )
    return [*lines, "", _source(path, r["provenance"], root)]


def backprojection_table(path: Path, root: Path) -> list[str]:
    """Both tools' maps of one dataset, scored against the true map by one FSC."""
    r = _load(path)
    d = r["cryodrgn_parse_max_abs_diff"]
    lines = [
        f"{r['n']:,} particles, {r['D']} px, {r['psize_A']:g} Å/px, SNR {r['snr']:g}, "
        f"{r['threads']} thread(s) each; cryoDRGN {r['provenance']['versions'].get('cryodrgn')}.",
        "",
        "| tool | wall s | peak RSS GB | res @ FSC 0.5 vs truth (Å) | res @ 0.143 (Å) | mean FSC | voxel Å in header |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['tool']} | {x['wall_s']:.1f} | {x['rss_gb']:.2f} | {x['res05_A']:.2f} | {x['res0143_A']:.2f} | "
            f"{x['fsc_auc']:.3f} | {x['voxel_A']:.3f} |"
        )
    lines += [
        "",
        f"cryoDRGN's own parsers (`parse_pose_star`, `parse_ctf_star`) on our star file against our cryoDRGN "
        f"pickles, largest difference: rotations {d['rot']:.1e}, translations {d['trans']:.1e}, CTF {d['ctf']:.1e}.",
        "",
        _source(path, r["provenance"], root),
    ]
    return lines


def io_table(path: Path, root: Path) -> list[str]:
    """Opening and Fourier-downsampling sparse stacks of growing size, with the process's peak RSS."""
    r = _load(path)
    lines = [
        "| stack GB (apparent) | images | box | open ms | downsample s | images/s | GB/s read | "
        "peak RSS GB (cumulative) | output correct |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        lines.append(
            f"| {x['size_gb']:.1f} | {x['n']:,} | {x['box']} | {x['open_ms']:.2f} | {x['downsample_s']:.1f} | "
            f"{x['images_per_s']:.0f} | {x['read_gb_per_s']:.2f} | {x['peak_rss_gb']:.2f} | "
            f"{'yes' if x['output_correct'] else 'NO'} |"
        )
    return [*lines, "", _source(path, r["provenance"], root)]


def memory_table(path: Path, root: Path) -> list[str]:
    """Peak RSS and CPU time of short whole training runs, per code version, format and options."""
    r = _load(path)
    commit = r["provenance"]["git"]["commit"][:9]
    lines = [
        f"`cryoscape train` on `{Path(r['settings']['data']).name}`, {r['settings']['epochs']} epochs, "
        f"{r['settings']['threads']} thread(s), one run at a time.",
        "",
        "| code | format | options | peak RSS GB | CPU s |",
        "|---|---|---|---|---|",
    ]
    for x in r["rows"]:
        code = f"{commit} (this file's)" if x["code"] == "current" else f"{x['code'][:9]} (older)"
        lines.append(
            f"| {code} | {x['format']} | `{x['options'] or '(defaults)'}` | {x['rss_gb']:.2f} | {x['cpu_s']:.0f} |"
        )
    return [*lines, "", _source(path, r["provenance"], root)]


def landscape_table(path: Path, root: Path) -> list[str]:
    """Whether the volume-space landscape of a continuous run shows its motion as one path."""
    r = _load(path)
    pc = r["path_check"]
    rows = [
        ("maps sampled (on-data k-means centres), box, voxel", f"{r['n_maps']}, {r['box']} px, {r['psize_A']:g} Å"),
        ("connected components of the maps' k-NN graph (k)", f"{pc['n_components']} ({pc['n_neighbors']})"),
        (
            "\\|Spearman\\| volume PC1 vs true t (map's particle / its nearest particles)",
            f"{r['spearman_volume_pc1_vs_t_centre']:.3f} / {r['spearman_volume_pc1_vs_t_members']:.3f}",
        ),
        (
            "\\|Spearman\\| main-path order vs true t (map's particle / its nearest particles)",
            f"{r['spearman_path_order_vs_t_centre']:.3f} / {r['spearman_path_order_vs_t_members']:.3f}",
        ),
        ("\\|Spearman\\| main-path order vs latent PC1", f"{pc['spearman_order_vs_latent_pc1']:.3f}"),
        (
            "\\|Spearman\\| latent PC1 vs true t, per particle (reference)",
            f"{r['spearman_latent_pc1_vs_t_particles']:.3f}",
        ),
        ("volume PC1's share of the variance", f"{r['volume_pc1_explained']:.2f}"),
        (
            "wall s (decoding the maps), peak RSS GB",
            f"{r['wall_s']:.0f} ({r['landscape_seconds']['maps']:.0f}), {r['rss_gb']:.2f}",
        ),
    ]
    lines = ["| measure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return [*lines, "", _source(path, r["provenance"], root)]


def states_junk_tables(path: Path, root: Path) -> list[str]:
    """States chosen, per-state maps against backprojecting the true particles, junk precision/recall;
    the seeds of ``path`` and of any ``states_junk_*.json`` beside it (more seeds, same settings)."""
    files = [path, *sorted(path.parent.glob(f"{path.stem}_*.json"))]
    runs = [_load(f) for f in files]
    st = runs[0]["settings"]
    same = [{k: v for k, v in r["settings"].items() if k != "seeds"} for r in runs]
    if any(x != same[0] for x in same):
        raise SystemExit(f"{path.parent}: states_junk files with different settings")
    seeds = [x for r in runs for x in r["seeds"]]
    lines = [
        f"{st['n']:,} particles, {st['D']} px, SNR {st['snr']:g}, {len(st['shares'])} states with shares "
        f"{', '.join(f'{x:.0%}' for x in st['shares'])}, plus {st['junk']:.0%} junk; {st['epochs']} epochs, "
        f"zdim {st['zdim']}.",
        "",
        "| seed | states chosen (true) | each true state its own | per-state maps within 10% | "
        "junk precision | junk recall | recall noise / decoy / ice |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in seeds:
        kinds = x["junk_recall_by_kind"]
        lines.append(
            f"| {x['seed']} | {x['k_chosen']} ({len(st['shares'])}) | {'yes' if x['one_to_one'] else 'no'} | "
            f"{'yes' if x['maps_within_10pct'] else 'no'} | {x['junk_precision']:.3f} | {x['junk_recall']:.3f} | "
            f"{kinds.get('noise', 0):.2f} / {kinds.get('decoy', 0):.2f} / {kinds.get('ice', 0):.2f} |"
        )
    right = sum(x["k_right"] for x in seeds)
    lines += [
        "",
        f"The number of states is right on {right} of {len(seeds)} seeds.",
        "",
        "| seed | true share | particles | found | purity | recall | FSC 0.5 vs truth Å: state's particles / "
        "true particles | masked half-map FSC 0.143 Å |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in seeds:
        if not x["one_to_one"]:
            continue
        for t in x["states"]:
            lines.append(
                f"| {x['seed']} | {t['share']:.0%} | {t['n_true']} | {t['n_predicted']} | {t['purity']:.3f} | "
                f"{t['recall']:.3f} | {t['res05_states_A']:.2f} / {t['res05_true_particles_A']:.2f} | "
                f"{t['res0143_halfmaps_masked_A']:.2f} |"
            )
    lines.append("")
    return lines + [_source(f, r["provenance"], root) for f, r in zip(files, runs)]


def reproduce_tables(path: Path, root: Path) -> list[str]:
    """`cryoscape reproduce` on a continuous motion and on the same molecule without it, per seed;
    ``path`` is the continuous file, ``reproduce_homogeneous.json`` beside it the other."""
    other = path.with_name("reproduce_homogeneous.json")
    runs = [_load(path), _load(other)]
    st = runs[0]["settings"]
    if runs[1]["settings"] != st:
        raise SystemExit(f"{path.parent}: reproduce files with different settings")
    lines = [
        f"{st['n']:,} particles ({st['n'] // 2:,} per half), {st['D']} px, SNR {st['snr']:g}, {st['epochs']} epochs, "
        f"zdim {st['zdim']}; threshold {runs[0]['threshold']:g}.",
        "",
        "| data | seed | map agreement | verdict | cosine, first mode | states per half | "
        "particles assigned alike (chance) | ARI | \\|Spearman\\| PC1 vs t, half 1 / 2 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        for x in r["runs"]:
            rho = x.get("pc1_spearman_vs_t")
            rho_s = "-" if rho is None else f"{rho['half1']:.3f} / {rho['half2']:.3f}"
            lines.append(
                f"| {r['kind']} | {x['seed']} | {x['map_agreement']:.3f} | "
                f"{'reproduced' if x['reproduced'] else 'not reproduced'} | {x['mode_cosines'][0]:.3f} | "
                f"{x['k'][0]} / {x['k'][1]} | {x['particle_agreement']:.3f} ({x['chance_agreement']:.3f}) | "
                f"{x['ari']:.3f} | {rho_s} |"
            )
    lo = min(x["map_agreement"] for x in runs[0]["runs"])
    hi = max(x["map_agreement"] for x in runs[1]["runs"])
    lines += ["", f"Lowest continuous score {lo:.3f}, highest homogeneous score {hi:.3f}.", ""]
    return lines + [_source(f, r["provenance"], root) for f, r in zip((path, other), runs)]


def _pose_row(kind: str, label: str, given: str, x: dict) -> str:
    q = ", ".join(f"{'Spearman' if k == 'spearman_pc1' else 'ARI'} {v:.3f}" for k, v in x["latent"].items())
    e = x["poses_end"]
    ends = "- | -" if e is None else f"{e['rot_median_deg']:.2f} / {e['rot_p90_deg']:.2f} | {e['shift_median_px']:.2f}"
    auc = x["perimage"]["mean_auc"]
    return f"| {kind} | {given} | {label} | {q} | {auc:.4f} | {ends} | {x['wall_s']:.0f} | {x['rss_gb']:.2f} |"


#: The refined rows' label where a file names none: files without a ``label`` ran the schedule that
#: was the default when they were made, rotations and shifts together (now ``--refine-rotations-from 0``)
DEFAULT_REFINE_LABEL = "--refine-poses, rotations with the shifts"


def pose_tables(path: Path, root: Path) -> list[str]:
    """What pose error costs and what --refine-poses wins back: every ``pose_refine_*.json`` beside
    ``path``, one row per run (true poses once per file, then each error level without and with
    refinement)."""
    files = sorted(path.parent.glob("pose_refine_*.json"))
    lines = [
        "| data | rotation / shift error given (median) | run | latent quality | per-image FSC AUC | "
        "rotation error at the end, median / p90 (deg) | shift error at the end, median (px) | wall s | peak RSS GB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    runs, shown = [], set()
    rows = []  # (kind, level, run order, line): sorted, each level's runs come together
    order = {"plain": 1, "refined": 2, "cryodrgn_pose_sgd": 3}
    for f in files:
        r = _load(f)
        runs.append(r)
        kind = r["settings"]["kind"]
        if r.get("true_poses") and kind not in shown:  # the same images and run in every file of a kind
            shown.add(kind)
            rows.append((kind, 0.0, 0, _pose_row(kind, "true poses", "0 / 0", r["true_poses"])))
        for lv in r["levels"]:
            given = f"{lv['poses_start']['rot_median_deg']:.2f} deg / {lv['poses_start']['shift_median_px']:.2f} px"
            for key, label in (
                ("plain", "given poses"),
                ("refined", r["settings"].get("label") or DEFAULT_REFINE_LABEL),
                ("cryodrgn_pose_sgd", "cryoDRGN --do-pose-sgd (256 x 3)"),
            ):
                if lv.get(key):
                    rows.append((kind, lv["rot_error_deg"], order[key], _pose_row(kind, label, given, lv[key])))
    lines += [x[3] for x in sorted(rows, key=lambda x: x[:3])]
    st = runs[0]["settings"]
    lines += [
        "",
        f"{st['n']:,} particles, {st['D']} px, SNR {st['snr']:g}, {st['epochs']} epochs, zdim {st['zdim']}, "
        f"cryoscape's defaults; per-image FSC over {st['perimage']} particles.",
        "",
    ]
    return lines + [_source(f, r["provenance"], root) for f, r in zip(files, runs)]


def pose_crb_table(path: Path, root: Path) -> list[str]:
    """The Cramer-Rao bound of each particle's pose per band: every ``pose_crb_*.json`` beside ``path``."""
    files = sorted(path.parent.glob("pose_crb_*.json"))
    lines = [
        "| data | band (of Nyquist) | points per image | rotation bound, median / p90 (deg) | "
        "shift bound, median / p90 (px) | noise power (median) |",
        "|---|---|---|---|---|---|",
    ]
    runs = [_load(f) for f in files]
    for r in runs:
        st = r["settings"]
        for b in r["bands"]:
            lines.append(
                f"| {st['kind']} | {b['band']:g} | {b['points']:,} "
                f"| {b['rot_median_deg']:.2f} / {b['rot_p90_deg']:.2f} "
                f"| {b['shift_median_px']:.3f} / {b['shift_p90_px']:.3f} | {b['noise_power_median']:.2f} |"
            )
    st = runs[0]["settings"]
    lines += [
        "",
        f"{st['particles']} particles of each set at their true poses, the map trained on the true poses "
        f"({st['n']:,} particles, {st['D']} px, SNR {st['snr']:g}, cryoscape's defaults); "
        f"{st['draws']} draws per particle from the bound.",
        "",
    ]
    return lines + [_source(f, r["provenance"], root) for f, r in zip(files, runs)]


#: marker name -> (results file, table function)
SECTIONS = {
    "profile": ("cpu/profile_step.json", profile_tables),
    "backprojection": ("cpu/backproject_10k.json", backprojection_table),
    "io": ("cpu/io_large_stack.json", io_table),
    "memory": ("cpu/train_memory_3k.json", memory_table),
    "landscape": ("cpu/landscape_continuous_3k.json", landscape_table),
    "states": ("cpu/states_junk.json", states_junk_tables),
    "reproduce": ("cpu/reproduce_continuous.json", reproduce_tables),
    "poses": ("cpu/pose_refine_continuous_6.json", pose_tables),
    "pose-crb": ("cpu/pose_crb_continuous.json", pose_crb_table),
}
