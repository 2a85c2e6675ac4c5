"""Tables of the "per-image work and steps to quality" section of benchmarks/README.md.

Each function turns committed results files (benchmarks/results/cpu/...) into markdown lines;
benchmarks/make_tables.py writes them between ``<!-- regime:begin -->`` and ``<!-- regime:end -->``
and checks them in CI, so every figure in that section has a file with its command and machine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

METRIC = {"spearman_pc1": "\\|Spearman\\| PC1", "ari_kmeans": "ARI"}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _where(prov: dict) -> str:
    m, g = prov["machine"], prov["git"]
    bf16 = "bf16" if m.get("avx512_bf16") or m.get("amx_bf16") else "no bf16"
    return (
        f"{m.get('cpu_model')}, {m.get('cpus_usable')} of {m.get('cpu_count')} cores usable, {bf16}; "
        f"torch {prov['versions']['torch']}; commit {g['commit'][:9]}{' (dirty)' if g.get('dirty') else ''}"
    )


def _source(path: Path, prov: dict, root: Path) -> str:
    """Where a table comes from; the file holds the full command line, versions and machine."""
    return f"Source: `{path.relative_to(root)}` ({_where(prov)})."


def allocator_table(path: Path, root: Path) -> list[str]:
    """Per-step img/s with glibc's default allocator and with :func:`tune_cpu_allocator`."""
    r = _load(path)
    rows = {}
    for x in r["rows"]:
        rows.setdefault((x["D"], x["batch"], x["format"]), {})[x["allocator_tuned"]] = x["images_per_s"]
    lines = ["| box | batch | format | img/s, default allocator | img/s, tuned | gain |", "|---|---|---|---|---|---|"]
    for (D, B, fmt), v in rows.items():
        if True in v and False in v:
            lines.append(f"| {D} | {B} | {fmt} | {v[False]:.1f} | {v[True]:.1f} | {v[True] / v[False]:.2f}x |")
    return [*lines, "", _source(path, r["provenance"], root)]


def sampling_step_table(path: Path, root: Path) -> list[str]:
    """Per-step img/s and peak RSS with every coefficient fitted and with sampled high frequencies."""
    r = _load(path)
    rows: dict[tuple, dict] = {}
    for x in r["rows"]:
        rows.setdefault((x["D"], x["batch"], x["format"]), {})[x["hf_sample"]] = x
    lines = [
        "| box | batch | format | img/s, every coefficient | img/s, sampled (share) | gain | "
        "peak RSS GB, every / sampled |",
        "|---|---|---|---|---|---|---|",
    ]
    for (D, B, fmt), v in rows.items():
        if 1.0 not in v:
            continue
        full = v[1.0]
        for share, x in sorted(v.items()):
            if share < 1.0:
                lines.append(
                    f"| {D} | {B} | {fmt} | {full['images_per_s']:.2f} | "
                    f"{x['images_per_s']:.2f} ({share:g}) | {x['images_per_s'] / full['images_per_s']:.2f}x | "
                    f"{full['peak_rss_gb']:.2f} / {x['peak_rss_gb']:.2f} |"
                )
    return [*lines, "", _source(path, r["provenance"], root)]


def chunk_step_table(path: Path, root: Path) -> list[str]:
    """Per-step img/s and peak RSS with the whole batch in one pass and in chunks (``--max-points``)."""
    r = _load(path)
    rows: dict[tuple, dict] = {}
    for x in r["rows"]:
        rows.setdefault((x["D"], x["batch"], x["format"], x["hf_sample"]), {})[x["max_points"]] = x
    lines = [
        "| box | batch | format | share fitted | points per chunk | img/s | peak RSS GB | img/s vs one pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (D, B, fmt, hf), v in rows.items():
        whole = v.get(0)
        for mp, x in sorted(v.items(), key=lambda kv: kv[0] or float("inf"), reverse=True):
            rel = f"{x['images_per_s'] / whole['images_per_s']:.2f}x" if whole and mp else "-"
            lines.append(
                f"| {D} | {B} | {fmt} | {hf:g} | {f'{mp:,}' if mp else 'all (one pass)'} | "
                f"{x['images_per_s']:.2f} | {x['peak_rss_gb']:.2f} | {rel} |"
            )
    return [*lines, "", _source(path, r["provenance"], root)]


def _flags(cmd: str) -> str:
    """The options that tell one ablation run from the others (what follows the common part)."""
    body = cmd.split("#")[0]
    found = re.findall(r"--(?:freq-march|pe-dim|hf-sample|batch-size|lr)\s+\S+", body)
    return " ".join(found) or "(none)"


def ablation_table(path: Path, root: Path, show: tuple[int, ...] = (2, 4, 6, 8)) -> list[str]:
    """Latent quality per epoch, the first epoch at the base run's final quality (and the training
    seconds to it), per-image AUC. The base: the run without the change (``--freq-march 0``, or
    named ``*base``)."""
    r = _load(path)
    runs = r["runs"]
    base = next(x for x in runs if "--freq-march 0 " in x.get("command", "") + " " or x["run"].endswith("base"))
    target = base["curve"][-1]
    metric = METRIC[base["metric"]]
    head = " | ".join(f"epoch {e}" for e in show)
    lines = [
        f"| run | options | {metric} at {head} | final | first epoch at {target:.3f} | training s to it "
        "| training s, all | per-image AUC | res@0.5 Å | code |",
        "|---|---|" + "---|" * (len(show) + 7),
    ]
    for x in runs:
        c = x["curve"]
        first = next((i + 1 for i, q in enumerate(c) if q >= target - 1e-9), None)
        to_first = "-" if first is None else f"{sum(x['epoch_s'][:first]):.0f}"
        code = x.get("command", "").split("#")[-1].strip()
        vals = " | ".join(f"{c[e - 1]:.3f}" for e in show)
        lines.append(
            f"| {x['run']} | `{_flags(x.get('command', ''))}` | {vals} | {c[-1]:.3f} | "
            f"{'-' if first is None else first} | {to_first} | {x['train_s']:.0f} | "
            f"{x['perimage_mean_auc']:.4f} | {x['perimage_mean_res05_A']:.2f} | {code} |"
        )
    return [*lines, "", f"{r['note']}", "", _source(path, r["provenance"], root)]


def side_by_side_table(path: Path, root: Path) -> list[str]:
    """cryoDRGN and cryoscape runs on one dataset: cost, final quality, time to cryoDRGN's final
    latent quality, and (where recorded) to both it and cryoDRGN's final per-image FSC AUC."""
    r = _load(path)
    metric = METRIC[r["metric"]]
    drgn = r["tools"]["cryoDRGN"]
    both = any("reached_both" in t for t in r["tools"].values())
    lines = [
        f"| tool | epochs | training s | img/s | peak RSS GB | final {metric} | "
        f"reaches cryoDRGN's final {r['target']:.3f} after | per-image AUC | res@0.5 Å |"
        + (f" reaches both {r['target']:.3f} and AUC {drgn['perimage_mean_auc']:.4f} after |" if both else ""),
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if both else ""),
    ]
    for name, t in r["tools"].items():
        s = t.get("reached_target_s")
        when = "-" if s is None else f"{s:.0f} s ({t['speedup_to_target']:.1f}x sooner)"
        if name == "cryoDRGN":
            when = f"{t['train_s']:.0f} s (its last epoch)"
        row = (
            f"| {name} | {t['epochs']} | {t['train_s']:.0f} | {t['images_per_s']:.1f} | {t['rss_gb']:.2f} | "
            f"{t['final'][r['metric']]:.3f} | {when} | {t['perimage_mean_auc']:.4f} | "
            f"{t['perimage_mean_res05_A']:.2f} |"
        )
        if both:
            b = t.get("reached_both")
            if name == "cryoDRGN":
                row += " (the targets) |"
            elif b is None or b["s"] is None:
                row += " not within its epochs |"
            else:
                row += f" {b['s']:.0f} s, epoch {b['epoch'] + 1} ({t['speedup_to_both']:.1f}x sooner) |"
        lines.append(row)
    cmds = [f"- {name}: `{t['command']}`" for name, t in r["tools"].items()]
    return [*lines, "", r["note"], "", *cmds, "", _source(path, r["provenance"], root)]


def demo_table(paths: list[Path], root: Path) -> list[str]:
    """Wall time of `cryoscape demo` per setting."""
    lines = [
        "| CPU | demo arguments | instruction set | wall s | peak RSS GB | score | img/s (last three epochs) |",
        "|---|---|---|---|---|---|---|",
    ]
    sources = []
    for p in paths:
        r = _load(p)
        full = [e["images_per_s"] for e in r["epochs"]][-3:]
        name = (r["score_name"] or "score").replace("|", "\\|")
        isa = r["provenance"].get("isa_env") or {}
        limit = ", ".join(f"{k}={v}" for k, v in isa.items()) or "all the CPU has"
        cpu = r["provenance"]["machine"].get("cpu_model")
        lines.append(
            f"| {cpu} | `{' '.join(r['demo_args']) or '(defaults)'}` | {limit} | {r['wall_s']:.0f} | "
            f"{r['rss_gb']:.2f} | "
            f"{name} {r['score']:.3f} | {', '.join(map(str, full))} |"
        )
        sources.append("- " + _source(p, r["provenance"], root))
    return [*lines, "", *sources]


def regime_section(results: Path, root: Path) -> list[str]:
    """All tables of the section, each under a label, for the files that exist."""
    cpu = results / "cpu"
    out: list[str] = []
    parts = [
        ("Host allocator, one training step", [cpu / "step_throughput_1thread.json"], allocator_table),
        ("Frequency marching, continuous", [cpu / "ablation_continuous_3k.json"], ablation_table),
        ("Frequency marching, compositional", [cpu / "ablation_compositional_3k.json"], ablation_table),
        ("Sampled high frequencies, continuous", [cpu / "ablation_hfsample_continuous_3k.json"], ablation_table),
        ("Sampled high frequencies, compositional", [cpu / "ablation_hfsample_compositional_3k.json"], ablation_table),
        (
            "Side by side with cryoDRGN, continuous 3k, before sampled high frequencies",
            [cpu / "sidebyside_continuous_3k.json"],
            side_by_side_table,
        ),
        (
            "Side by side with cryoDRGN, continuous 3k, with sampled high frequencies (AMD EPYC, previous session)",
            [cpu / "sidebyside_continuous_3k_hfsample.json"],
            side_by_side_table,
        ),
        (
            "Side by side with cryoDRGN, continuous 3k, the current defaults (Intel Xeon with AMX, this session)",
            [cpu / "sidebyside_continuous_3k_xeon.json"],
            side_by_side_table,
        ),
        (
            "Side by side with cryoDRGN, continuous 3k, the current defaults and a shallower decoder (AMD EPYC)",
            [cpu / "sidebyside_continuous_3k_epyc_depth2.json"],
            side_by_side_table,
        ),
        (
            "Batch size, continuous (AMD EPYC, AVX2 only: fp32)",
            [cpu / "ablation_batch_continuous_3k.json"],
            ablation_table,
        ),
        (
            "Batch size, compositional (AMD EPYC, AVX2 only: fp32)",
            [cpu / "ablation_batch_compositional_3k.json"],
            ablation_table,
        ),
        (
            "Side by side with cryoDRGN, continuous 3k, batch 16 on a CPU without bf16 (AMD EPYC, AVX2 only)",
            [cpu / "sidebyside_continuous_3k_avx2_batch16.json"],
            side_by_side_table,
        ),
    ]
    for title, files, fn in parts:
        if files[0].exists():
            out += [f"**{title}**", "", *fn(files[0], root), ""]
    for path in sorted(cpu.glob("step_throughput_hfsample*.json")):
        out += ["**Sampled high frequencies, one training step**", "", *sampling_step_table(path, root), ""]
    for path in sorted(cpu.glob("step_throughput_chunks*.json")):
        out += ["**Memory at 128 and 256 px: one training step in chunks**", "", *chunk_step_table(path, root), ""]
    demos = sorted(cpu.glob("demo_*.json"))
    if demos:
        out += ["**`bash scripts/demo.sh` (= `cryoscape demo`)**", "", *demo_table(demos, root), ""]
    return out
