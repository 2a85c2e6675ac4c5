"""Simulation: the demo molecule, atomic-model rendering and particle datasets with ground truth."""

from cryoscape.sim.atoms import load_atomic_model, render_atoms, sigma_from_resolution
from cryoscape.sim.molecule import demo_atoms, demo_volume, demo_volumes
from cryoscape.sim.simulate import SimConfig, simulate_dataset

__all__ = [
    "SimConfig",
    "demo_atoms",
    "demo_volume",
    "demo_volumes",
    "load_atomic_model",
    "render_atoms",
    "sigma_from_resolution",
    "simulate_dataset",
]
