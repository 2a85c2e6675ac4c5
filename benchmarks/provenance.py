"""Where a benchmark figure came from: command line, code version, packages and machine.

Every results JSON written under ``benchmarks/results/`` carries :func:`provenance` so a number
can be traced to the exact code, the tools' versions and the hardware (a bf16-capable CPU
changes cryoscape's speed several-fold, so the CPU flags matter as much as the core count).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_PACKAGES = ("torch", "numpy", "cryoscape")
#: Variables that cap the instruction set torch's kernels, oneDNN and MKL use
ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.rstrip("\n")  # not strip(): porcelain lines start with a status column


def git_state() -> dict:
    """Commit of the working tree and whether tracked files differ from it (untracked files
    are other people's work in progress and do not change what ran)."""
    commit = _git("rev-parse", "HEAD")
    commit = commit.strip() if commit else commit
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": None if status is None else bool(status),
        "dirty_files": None if not status else [ln[3:] for ln in status.splitlines()],
    }


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def cryodrgn_version(executable: str | None) -> str | None:
    """Version of the cryoDRGN behind ``executable`` (its own venv's Python answers)."""
    if not executable:
        return None
    python = Path(executable).parent / "python"
    try:
        out = subprocess.run(
            [str(python), "-c", "from importlib.metadata import version; print(version('cryodrgn'))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpuinfo() -> tuple[str | None, set[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or None, set()
    model, flags = None, set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = val.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(val.split())
    return model, flags


def machine() -> dict:
    """CPU model, cores this process may use, bf16-relevant flags, torch's view, GPU name."""
    model, flags = _cpuinfo()
    info = {
        "hostname": platform.node(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "avx512f": "avx512f" in flags,
    }
    try:
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 1e6, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        import torch

        info["torch_mkldnn_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception as e:  # a provenance probe must never stop a benchmark
        info["torch_probe_error"] = repr(e)
    return info


def provenance(argv: list[str] | None = None, cryodrgn: str | None = None) -> dict:
    """The record to store with every benchmark result (``argv`` defaults to ``sys.argv``)."""
    argv = sys.argv if argv is None else argv
    return {
        "command": shlex.join([Path(sys.executable).name, *argv]),
        "cwd": os.getcwd(),
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_state(),
        "versions": {
            "python": platform.python_version(),
            **{p: _version(p) for p in _PACKAGES},
            "cryodrgn": cryodrgn_version(cryodrgn),
        },
        "machine": machine(),
        "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        # instruction-set limits that emulate an older CPU (set only when a run asks for them)
        "isa_env": {k: os.environ[k] for k in ISA_ENV if k in os.environ},
        # other jobs on the machine slow a timed run: the 1/5/15-minute load when the record was made
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def save_result(path: str | os.PathLike, result: dict) -> Path:
    """Write a results file: JSON (figures as floats, numpy scalars included) with a final newline,
    its folder made if needed. One writer, so every file under ``benchmarks/results/`` reads alike."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float) + "\n")
    return path


if __name__ == "__main__":
    print(json.dumps(provenance(cryodrgn=sys.argv[1] if len(sys.argv) > 1 else None), indent=1))
