"""Write the generated tables of benchmarks/README.md from the results files (CryoBench, per-image work).

The README's section between ``<!-- cryobench:begin -->`` and ``<!-- cryobench:end -->`` is
generated, never edited by hand, so every figure in it has a results file with its command,
commit and machine (benchmarks/provenance.py). ``--check`` exits 1 when the README differs from
what the files give (run by tests/test_benchmark_tables.py).

Usage: python benchmarks/make_tables.py [--check] [--results DIR] [--readme FILE]
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- cryobench:begin -->", "<!-- cryobench:end -->"
NAMES = {
    "cryoscape": "cryoscape (defaults)",
    "cryoscape-fp32": "cryoscape (defaults, autocast off: fp32)",
    "cryoscape-enc-crop-32": "cryoscape --enc-crop 32 (a trial, dropped; the option is gone)",
    "cryoscape-n12": "cryoscape -n 12 (a trial)",
    "cryoscape-fp32-n12": "cryoscape -n 12, autocast off: fp32 (a trial)",
    "cryodrgn-cpu": "cryoDRGN 256x3, b 8",
    "cryodrgn-default": "cryoDRGN defaults (1024x3, b 8)",
}
METRIC = {"spearman_pc1": "\\|Spearman\\| PC1", "ari_kmeans": "ARI"}


def _f(x, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def _machine(prov: dict) -> str:
    m, g = prov["machine"], prov["git"]
    bf16 = "bf16" if m.get("avx512_bf16") or m.get("amx_bf16") else "no bf16"
    where = m.get("gpu") or f"{m.get('cpu_model')}, {m.get('cpus_usable')} of {m.get('cpu_count')} cores, {bf16}"
    return f"{where}; commit {g['commit'][:9]}{' (dirty)' if g.get('dirty') else ''}"


def training_tables(runs: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "| results file | data | tool | epochs | wall s | s/epoch | img/s | peak RSS GB | latent metric | "
        "per-image AUC | per-conf. AUC | worst conf. AUC | res@0.5 Å |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    reach = [
        "| results file | cryoDRGN setting | its final latent metric | cryoDRGN training s | "
        "cryoscape s to reach it | ratio |",
        "|---|---|---|---|---|---|",
    ]
    machines = []
    for name, r in runs:
        seen = r["data"].get("snr_at_D", {}).get(str(r["D"]))
        data = f"{r['kind']}, {r['n']:,} img, {r['D']} px ({r['psize_A']:g} Å/px), SNR {_f(seen, '.3f')}"
        for tool, t in r["tools"].items():
            stop = " (limit)" if t.get("timed_out") else ""
            mp = t["maps"]
            metric = f"{METRIC[r['metric']]} {_f(t['final'].get(r['metric']))}"
            lines.append(
                f"| {name} | {data} | {NAMES.get(tool, tool)} | {t['epochs']}{stop} | {t['wall_s']:.0f} | "
                f"{_f(t['median_epoch_s'], '.1f')} | {_f(t['images_per_s'], '.0f')} | {t['rss_gb']:.2f} | "
                f"{metric} | {_f(mp.get('perimage_auc'), '.4f')} | {_f(mp.get('perconf_auc'), '.4f')} | "
                f"{_f(mp.get('worstconf_auc'), '.4f')} | {_f(mp.get('mean_res05_A'), '.2f')} |"
            )
        for drgn, x in r.get("time_to_cryodrgn_final", {}).items():
            ours = x["cryoscape_s"]
            ratio = "not reached" if ours is None else f"{x['cryodrgn_s'] / ours:.1f}x sooner"
            reach.append(
                f"| {name} | {NAMES.get(drgn, drgn)} | {x['target']:.3f} | {x['cryodrgn_s']:.0f} | "
                f"{_f(ours, '.0f')} | {ratio} |"
            )
        machines += _run_sources(name, r)
    return lines + [""] + (reach + [""] if len(reach) > 2 else []) + both_table(runs) + machines


def _run_sources(name: str, r: dict) -> list[str]:
    """Machine, commit and command of a results file, or of each run a ``merge`` joined in it."""
    if "parts" not in r:
        return [f"- `{name}`: {_machine(r['provenance'])}; `{r['provenance']['command']}`"]
    out = [f"- `{name}` joins runs made side by side ({r['note']}); merged by `{r['provenance']['command']}`:"]
    for p in r["parts"]:
        tools = ", ".join(NAMES.get(t, t) for t in p["tools"])
        out.append(f"  - {tools}: {_machine(p['provenance'])}; `{p['provenance']['command']}`")
    return out


def both_table(runs: list[tuple[str, dict]]) -> list[str]:
    """Per cryoscape setting: training time to cryoDRGN's final latent metric, and to it and its
    final per-image AUC together (files written by ``cryobench.py merge``)."""
    lines = [
        "| results file | cryoscape setting | cryoDRGN setting (its final latent metric / per-image AUC, "
        "training s) | cryoscape s to the latent metric | ratio | cryoscape s to both (epoch, its AUC) | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in runs:
        for drgn, x in r.get("time_to_cryodrgn_final", {}).items():
            for ours, y in x.get("by_setting", {}).items():
                lat, both, theirs = y["latent_s"], y["both"], x["cryodrgn_s"]
                lat_cells = "- | not reached" if lat is None else f"{lat:.0f} | {theirs / lat:.1f}x sooner"
                both_cells = (
                    "not reached | -"
                    if both is None
                    else f"{both['s']:.0f} (epoch {both['epoch'] + 1}, {both['auc']:.4f}) | "
                    f"{theirs / both['s']:.1f}x sooner"
                )
                lines.append(
                    f"| {name} | {NAMES.get(ours, ours)} | {NAMES.get(drgn, drgn)} ({x['target']:.3f} / "
                    f"{x['target_auc']:.4f}, {theirs:.0f} s) | {lat_cells} | {both_cells} |"
                )
    return lines + [""] if len(lines) > 2 else []


def throughput_table(runs: list[tuple[str, dict]]) -> list[str]:
    lines = [
        "| results file | box | tool | images/s (first epoch) | CPU ms per image (whole run) | peak RSS GB | "
        "peak GPU GB |",
        "|---|---|---|---|---|---|---|",
    ]
    machines = []
    for name, r in runs:
        for row in r["rows"]:
            cpu = _f(1e3 * row["cpu_s"] / row["n"], ".0f") if row.get("cpu_s") else "-"
            lines.append(
                f"| {name} | {row['D']} px | {NAMES.get(row['tool'], row['tool'])} | "
                f"{_f(row['images_per_s'], '.1f')} | {cpu} | {row['rss_gb']:.2f} | {_f(row['gpu_gb'], '.2f')} |"
            )
        machines.append(f"- `{name}`: {_machine(r['provenance'])}; `{r['provenance']['command']}`")
    return lines + [""] + machines


def generate(results: Path) -> str:
    """The generated section (markers included) for every JSON in ``results``."""
    files = sorted(results.glob("*.json"))
    loaded = [(p.name, json.loads(p.read_text())) for p in files]
    train = [(n, r) for n, r in loaded if "tools" in r]
    thr = [(n, r) for n, r in loaded if "rows" in r]
    out = [
        BEGIN,
        "<!-- generated by benchmarks/make_tables.py from benchmarks/results/cryobench/; do not edit by hand -->",
        "",
    ]
    smoke = [n for n, r in loaded if str(r.get("label", "")).startswith("smoke")]
    if smoke:
        out += [
            f"**Smoke tests, not results:** {', '.join(f'`{n}`' for n in smoke)} only prove the pipeline "
            "runs end to end (2,000 images, 2 epochs, a shared core); they say nothing about what either "
            "tool reaches, or how fast, on the full protocol.",
            "",
        ]
    if train:
        out += ["Training and scores:", ""] + training_tables(train) + [""]
    if thr:
        out += ["Throughput:", ""] + throughput_table(thr) + [""]
    if not loaded:
        out += ["(no results yet)", ""]
    return "\n".join(out + [END])


def splice(readme: str, section: str) -> str:
    """``readme`` with the text between the markers replaced by ``section``."""
    a, b = readme.find(BEGIN), readme.find(END)
    if a < 0 or b < a:
        raise SystemExit(f"the README lacks the markers {BEGIN} ... {END}")
    return readme[:a] + section + readme[b + len(END) :]


def _regenerate(readme: str, name: str, source: str, lines: list[str]) -> str:
    """``readme`` with the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` replaced
    by ``lines`` under a note naming their ``source``; unchanged if it lacks the markers."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    a, b = readme.find(begin), readme.find(end)
    if a < 0 or b < a:
        return readme
    note = f"<!-- generated by benchmarks/make_tables.py from {source}; do not edit by hand -->"
    return readme[:a] + "\n".join([begin, note, "", *lines, end]) + readme[b + len(end) :]


def splice_regime(readme: str) -> str:
    """``readme`` with its per-image-work section (benchmarks/tables_regime.py) regenerated."""
    sys.path.insert(0, str(HERE))
    import tables_regime as tr

    return _regenerate(readme, "regime", "benchmarks/results/cpu/", tr.regime_section(HERE / "results", HERE.parent))


def splice_sections(readme: str, results_root: Path = HERE / "results") -> str:
    """``readme`` with each section of benchmarks/tables_other.py regenerated from its results file
    (a missing file leaves a note)."""
    sys.path.insert(0, str(HERE))
    import tables_other as to

    for name, (rel, fn) in to.SECTIONS.items():
        path = results_root / rel
        rows = fn(path, HERE.parent) if path.exists() else [f"(no results file yet: `benchmarks/results/{rel}`)"]
        readme = _regenerate(readme, name, f"benchmarks/results/{rel}", [*rows, ""])
    return readme


#: A figure in prose: a decimal number, or a number with a unit of time, memory, speed or ratio.
_FIGURE = re.compile(r"(?<![\w.-])(\d[\d,]*\.\d+|\d[\d,]*(?=\s?(?:x\b|×|s\b|GB|img/s|%|min\b|h\b)))")
#: Settings and protocol parameters that prose may name without a table (they are inputs, not results).
SETTINGS = {
    *("0.01", "0.0025"),  # CryoBench's SNR, and what the render box gets for it at 64 px
    *("1.5", "2.5", "2.7"),  # Å/px at 128 px; defocus up to 2.5 µm; Cs 2.7 mm
    "1024",  # cryoDRGN's default width
}


def untraced_figures(readme: str) -> list[str]:
    """Figures quoted in the README's prose (outside generated sections, code blocks and inline
    code) that no generated section holds and that are not :data:`SETTINGS`: each is a number a
    reader could not trace to a results file."""
    sections = r"<!-- ([\w-]+):begin -->.*?<!-- \1:end -->"
    generated = "\n".join(m.group(0) for m in re.finditer(sections, readme, re.S))
    prose = re.sub(sections, "", readme, flags=re.S)
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)
    prose = re.sub(r"`[^`]*`", "", prose)
    known = {m.replace(",", "") for m in re.findall(r"\d[\d,]*(?:\.\d+)?", generated)}
    return [f for f in _FIGURE.findall(prose) if f.replace(",", "") not in known | SETTINGS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the README is not up to date")
    ap.add_argument("--results", type=Path, default=HERE / "results" / "cryobench")
    ap.add_argument("--readme", type=Path, default=HERE / "README.md")
    args = ap.parse_args(argv)
    old = args.readme.read_text()
    new = splice_sections(splice_regime(splice(old, generate(args.results))), args.results.parent)
    if args.check:
        if new != old:
            sys.stdout.writelines(
                difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(args.readme), "generated")
            )
            print(f"{args.readme} is out of date: run python benchmarks/make_tables.py", file=sys.stderr)
            return 1
        loose = untraced_figures(new)
        if loose and args.readme.name == "README.md" and args.readme.parent == HERE:
            print(f"{args.readme}: figures in prose that no generated table holds: {loose}", file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.readme.write_text(new)
        print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
