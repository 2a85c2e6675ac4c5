"""Simulated particle datasets with ground truth, made with the shared forward model.

Image formation: ``image = translate(-shift)(ctf * projection(volume, pose)) + noise`` exactly as
:class:`cryoscape.fourier.project.Projector` computes it, with white Gaussian noise of standard
deviation ``sigma = sqrt(signal_var / snr)``. ``signal_var`` is the variance over all pixels of
a random sample of noise-free images (CTF applied, shifted, whole box); the variance over the
whole dataset is recorded afterwards as ``measured_snr``.

Continuous heterogeneity is quantised: ``t`` is drawn from the chosen distribution and snapped
to ``t_bins`` evenly spaced values (default 100), one volume each; the stored ``t`` is the
snapped value actually used. Particles are projected volume by volume (one ``Projector`` per
volume) and written in place into a pre-sized stack, so memory stays bounded.

Pose error (``rot_error_deg``, ``shift_error_px``, see :mod:`cryoscape.sim.pose_error`): the images
are made with the true poses and the metadata carries perturbed ones, as a consensus refinement
would give; the true poses go to ``ground_truth.npz`` and ``poses_true.pkl``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cryoscape.errors import InputError
from cryoscape.io.particles import CTFParams
from cryoscape.sim.pose_error import PoseError
from cryoscape.sim.sources import KINDS, VolumeBank


@dataclass(frozen=True)
class SimConfig:
    """Everything that defines a simulated dataset (``simulation.json`` records it all)."""

    source: str = "demo"  # "demo", "volumes" (MRC files) or "pdb"
    inputs: tuple[str, ...] = ()  # MRC or PDB/mmCIF paths for the non-demo sources
    kind: str = "continuous"  # continuous | compositional | both (both: demo only)
    n_particles: int = 5000
    D: int | None = None  # demo/pdb: default 64; MRC: the maps' box
    psize_A: float | None = None  # demo: 3 * 64 / D; MRC: header; pdb: fit the model
    resolution_A: float | None = None  # demo/pdb rendering; default 2.5 * psize_A
    snr: float = 0.1  # float("inf") for noise-free images
    shift_max_px: float | None = None  # default D / 16
    ctf: bool = True
    defocus_min_A: float = 10000.0
    defocus_max_A: float = 25000.0
    astigmatism_A: float = 0.0
    voltage_kV: float = 300.0
    cs_mm: float = 2.7
    amp_contrast: float = 0.1
    bfactor_A2: float = 0.0
    bfactor_max_A2: float | None = None  # per-particle B ~ U(bfactor_A2, bfactor_max_A2) when given
    bfactor_in_metadata: bool = True  # False: star/cs carry B = 0, as real metadata does
    poses_path: str | None = None  # cryoDRGN pose pkl or star; rotations (and shifts) from it
    dist: str = "uniform"  # distribution of t, see cryoscape.sim.sampling.T_MIXTURES
    proportions: tuple[float, ...] | None = None  # of the discrete states; default equal
    t_bins: int = 100
    exact_counts: bool = False  # t bins used evenly (uniform dist) / states in exact proportions
    junk_fraction: float = 0.0  # share of particles replaced by junk (see cryoscape.sim.junk)
    max_angle_deg: float = 50.0  # demo hinge opening at t = 1
    rot_error_deg: float = 0.0  # median angle between written and true rotations
    shift_error_px: float = 0.0  # median |written - true shift|, pixels
    pose_error_corr: float = 0.0  # how strongly the error size follows t (or the state), in [0, 1]
    seed: int = 0
    batch_size: int = 256
    snr_sample: int = 300  # particles used to estimate the signal variance
    progress: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown heterogeneity kind {self.kind!r}; choose from {', '.join(KINDS)}")
        if self.n_particles < 1:
            raise InputError(f"need at least one particle, got {self.n_particles}")
        if not self.snr > 0:
            raise InputError(f"--snr must be positive (inf for no noise), got {self.snr}")
        if self.defocus_min_A > self.defocus_max_A or self.astigmatism_A < 0:
            raise InputError("need defocus-min <= defocus-max and astigmatism >= 0")
        if self.t_bins < 2:
            raise InputError(f"--t-bins must be at least 2, got {self.t_bins}")
        if self.bfactor_max_A2 is not None and self.bfactor_max_A2 < self.bfactor_A2:
            raise InputError(f"--bfactor-max {self.bfactor_max_A2} is below --bfactor {self.bfactor_A2}")
        if not 0.0 <= self.junk_fraction < 1.0:
            raise InputError(f"--junk must be a fraction in [0, 1), got {self.junk_fraction}")
        if self.exact_counts and self.dist != "uniform":
            raise InputError(f"--exact-counts spreads t evenly over the bins; it needs --dist uniform, got {self.dist}")
        self._check_pose_error()

    def _check_pose_error(self) -> None:
        if not 0.0 <= self.rot_error_deg <= 90.0:
            raise InputError(f"--rot-error must be a median angle in [0, 90] degrees, got {self.rot_error_deg}")
        if not 0.0 <= self.shift_error_px < float("inf"):
            raise InputError(f"--shift-error must be a non-negative number of pixels, got {self.shift_error_px}")
        if not 0.0 <= self.pose_error_corr <= 1.0:
            raise InputError(f"--pose-error-corr must be in [0, 1], got {self.pose_error_corr}")
        if self.pose_error_corr > 0 and not self.has_pose_error:
            raise InputError("--pose-error-corr shapes the pose error: give --rot-error and/or --shift-error too")

    @property
    def has_pose_error(self) -> bool:
        """Whether the written poses differ from the true ones."""
        return self.rot_error_deg > 0 or self.shift_error_px > 0


@dataclass
class Particles:
    """Per-particle ground truth: ``rotations (N, 3, 3)``, ``shifts_px (N, 2)``, volume index."""

    rotations: np.ndarray
    shifts_px: np.ndarray
    volume_index: np.ndarray
    ctf: CTFParams | None
    t: np.ndarray | None = None
    state: np.ndarray | None = None
    junk_kind: np.ndarray | None = None  # (N,) int8 code of cryoscape.sim.junk.JUNK_KINDS, 0: real
    pose_error: PoseError | None = None  # the perturbed poses the metadata carries, if any
    stats: dict = field(default_factory=dict)

    def written_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rotations (N, 3, 3), shifts_px (N, 2))`` for the metadata: perturbed with pose error, else true."""
        if self.pose_error is None:
            return self.rotations, self.shifts_px
        return self.pose_error.rotations, self.pose_error.shifts_px


def build_bank(cfg: SimConfig) -> VolumeBank:
    """The ground-truth volumes ``cfg`` asks for."""
    from cryoscape.sim import molecule, sources

    if cfg.source == "demo":
        D = cfg.D or molecule.DEFAULT_D
        if D % 2 or D < 16:
            raise InputError(f"-D must be even and at least 16, got {D}")
        ps = cfg.psize_A or molecule.default_psize_A(D)
        res = cfg.resolution_A or molecule.default_resolution_A(ps)
        return sources.demo_bank(cfg.kind, D, ps, res, cfg.t_bins, cfg.max_angle_deg)
    if not cfg.inputs:
        raise InputError("give --demo, one or more VOL.mrc, or --pdb FILE")
    if cfg.source == "volumes":
        return sources.volume_file_bank(cfg.inputs, cfg.kind, cfg.D, cfg.psize_A)
    if cfg.source == "pdb":
        D = cfg.D or 64
        if D % 2:
            raise InputError(f"-D must be even, got {D}")
        return sources.pdb_bank(cfg.inputs, cfg.kind, D, cfg.psize_A, cfg.resolution_A)
    raise ValueError(f"unknown source {cfg.source!r}")


def _load_poses(path: str, n: int, D: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(rotations (n, 3, 3), shifts_px (n, 2) or None)`` from the first ``n`` of a pose file."""
    if path.endswith(".pkl"):
        from cryoscape.io.cryodrgn import read_poses

        rot, trans = read_poses(path)
        shifts = None if trans is None else np.asarray(trans, np.float64) * D
    else:
        from cryoscape.io.load import load_particles

        pset = load_particles(path, images="skip", need_box=False)
        if pset.rotations is None:
            raise InputError("no poses in the file", path)
        rot, shifts = pset.rotations, pset.shifts_px
    if len(rot) < n:
        raise InputError(f"{len(rot)} poses for {n} particles; lower -n", path)
    return np.asarray(rot[:n], np.float64), None if shifts is None else shifts[:n]


def sample_particles(cfg: SimConfig, bank: VolumeBank) -> Particles:
    """Draw every per-particle parameter from independent streams of ``cfg.seed``."""
    from cryoscape.geometry import random_rotations
    from cryoscape.sim import sampling

    n, D = cfg.n_particles, bank.D
    # a sixth stream for junk, a seventh for pose error: the first five (so every other draw, hence the
    # images) are those of runs without them
    r_pose, r_shift, r_ctf, r_t, r_state, r_junk, r_err = np.random.default_rng(cfg.seed).spawn(7)
    shift_max = D / 16 if cfg.shift_max_px is None else cfg.shift_max_px
    shifts = sampling.sample_shifts_px(n, shift_max, r_shift)
    if cfg.poses_path:
        rot, file_shifts = _load_poses(cfg.poses_path, n, D)
        shifts = shifts if file_shifts is None else file_shifts
    else:
        rot = random_rotations(n, r_pose)
    ctf = None
    if cfg.ctf:
        ctf = sampling.sample_ctf(
            n,
            r_ctf,
            defocus_min_A=cfg.defocus_min_A,
            defocus_max_A=cfg.defocus_max_A,
            astigmatism_A=cfg.astigmatism_A,
            voltage_kV=cfg.voltage_kV,
            cs_mm=cfg.cs_mm,
            amp_contrast=cfg.amp_contrast,
            bfactor_A2=cfg.bfactor_A2,
            bfactor_max_A2=cfg.bfactor_max_A2,
        )
    t = t_bin = state = None
    if bank.n_t > 1 and cfg.exact_counts:
        t_bin = sampling.balanced_bins(n, bank.n_t, r_t)
        t = t_bin / (bank.n_t - 1)
    elif bank.n_t > 1:
        t_bin, t = sampling.quantise_t(sampling.sample_t(cfg.dist, n, r_t), bank.n_t)
    if bank.n_states > 1:
        props = cfg.proportions or (1.0,) * bank.n_states
        if len(props) != bank.n_states:
            raise InputError(f"{len(props)} proportions for {bank.n_states} states")
        draw = sampling.exact_states if cfg.exact_counts else sampling.sample_states
        state = draw(props, n, r_state)
    vi = (0 if state is None else state * bank.n_t) + (0 if t_bin is None else t_bin)
    junk = None
    if cfg.junk_fraction > 0:
        from cryoscape.sim.junk import sample_junk

        junk = sample_junk(n, cfg.junk_fraction, r_junk)
    err = _pose_error(cfg, rot, shifts, t, state, bank.n_states, r_err) if cfg.has_pose_error else None
    return Particles(rot, shifts, np.broadcast_to(vi, (n,)).astype(np.int64), ctf, t, state, junk, err)


def _pose_error(
    cfg: SimConfig,
    rot: np.ndarray,
    shifts: np.ndarray,
    t: np.ndarray | None,
    state: np.ndarray | None,
    n_states: int,
    rng: np.random.Generator,
) -> PoseError:
    """The perturbed poses; with ``cfg.pose_error_corr`` their size follows ``t``, else the state."""
    from cryoscape.sim.pose_error import error_scale, perturb_poses

    if cfg.pose_error_corr == 0:
        return perturb_poses(rot, shifts, cfg.rot_error_deg, cfg.shift_error_px, rng)
    if t is not None:
        coordinate, u = "t", t
    elif state is not None:
        coordinate, u = "state", state / (n_states - 1)
    else:
        raise InputError("--pose-error-corr needs heterogeneity (a coordinate t or several states) to follow")
    scale = error_scale(u, cfg.pose_error_corr)
    return perturb_poses(rot, shifts, cfg.rot_error_deg, cfg.shift_error_px, rng, scale, coordinate)


def simulate_dataset(cfg: SimConfig, outdir: str | os.PathLike) -> Path:
    """Simulate ``cfg`` into ``outdir`` (created); returns the path of ``particles.star``.

    Writes ``particles.mrcs/.star/.cs``, ``poses.pkl``, ``ctf.pkl``, ``gt_volumes/vol_*.mrc``,
    ``ground_truth.npz``, ``simulation.json`` and, with pose error, ``poses_true.pkl`` (see
    docs/simulation.md).
    """
    from cryoscape.sim import imaging, outputs

    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise InputError("exists and is not a folder", outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    bank = build_bank(cfg)
    parts = sample_particles(cfg, bank)
    sigma = imaging.noise_sigma(cfg, bank, parts)
    imaging.write_images(cfg, bank, parts, sigma, outdir)
    return outputs.write_metadata(cfg, bank, parts, sigma, outdir)
