"""Maps at latent codes for the dashboard: the model is loaded on first use, each map is written
to ``RUN/dashboard/maps/`` (the user keeps it) and returned as an isosurface mesh."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError


class MapMaker:
    """Makes one map at a time (bounded memory, no CPU oversubscription) from a run's weights."""

    def __init__(self, run_dir: Path, epoch: int | None, device: str | None, out_dir: Path, kind: str) -> None:
        self.run_dir, self.epoch, self.device, self.out_dir = run_dir, epoch, device, out_dir
        self._run = None
        self._lock = threading.Lock()
        weights = run_dir / ("weights.pt" if epoch is None else f"weights.{epoch}.pt")
        if kind != "cryoscape":
            self.note = "maps need a cryoscape run (this is a cryoDRGN run: use its eval_vol)"
        elif not (run_dir / "config.yaml").is_file():
            self.note = "no config.yaml in the run: no maps"
        elif not weights.is_file():
            self.note = f"no {weights.name} in the run: no maps"
        else:
            self.note = ""

    @property
    def available(self) -> bool:
        return not self.note

    def _trained_run(self):
        """The loaded run (model in eval mode on its device); call with ``self._lock`` held."""
        if self._run is None:
            from cryoscape.analysis.volumes import load_run
            from cryoscape.device import resolve_device

            self._run = load_run(self.run_dir, self.epoch, str(resolve_device(self.device)))
        return self._run

    def warm_up(self) -> None:
        """Load the model now (e.g. in a background thread) so the first click is quick."""
        if self.available:
            # an error is reported again, to the page, when a map is asked for
            with self._lock, contextlib.suppress(InputError):
                self._trained_run()

    def make(self, z: np.ndarray, name: str) -> dict:
        """The map at ``z: (zdim,)``: written to ``maps/NAME.mrc``; returns its mesh and facts."""
        from cryoscape.analysis.volumes import generate_volumes
        from cryoscape.io.mrc import write_volume
        from cryoscape.viz.isosurface import surface_mesh

        if not self.available:
            raise InputError(self.note)
        t0 = time.perf_counter()
        with self._lock:
            run = self._trained_run()
            if run.model.zdim != len(z):
                raise InputError(f"the model has zdim {run.model.zdim} but the code has {len(z)} values")
            vol = next(generate_volumes(run.model, np.asarray(z, np.float32)[None], scale=run.norm_std))
        t_map = time.perf_counter() - t0
        psize = run.psize_A or 1.0
        path = self.out_dir / "maps" / f"{name}.mrc"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_volume(path, vol, psize)
        try:
            mesh = surface_mesh(vol, psize_A=psize)
        except ValueError as e:  # a NaN map: the weights diverged
            raise InputError(f"no isosurface: {e}", path) from None
        return {
            "mesh": json.loads(mesh.to_json()),
            "level": mesh.level,
            "file": str(path),
            "url": f"files/maps/{path.name}",
            "name": path.name,
            "D": int(vol.shape[0]),
            "psize_A": psize,
            "seconds_map": round(t_map, 3),
            "seconds": round(time.perf_counter() - t0, 3),
        }
