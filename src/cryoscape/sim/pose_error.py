"""Pose error for simulations: the poses a consensus refinement would write, near the true ones.

The images are made with the true poses; the metadata carries poses perturbed as follows.

* Rotation: ``A_written = E @ A_true`` (``A`` the RELION/cryoDRGN matrix, volume -> image
  coordinates, see :mod:`cryoscape.geometry`): the error ``E`` turns the view after the true pose.
  ``E`` is the rotation by the vector ``s * g``, ``g`` a standard 3D Gaussian draw: a uniformly random
  axis and an angle ``s * chi(3)``, with ``s = median / CHI3_MEDIAN`` so that the angles' median is the
  requested one. The axis is isotropic, so ``A_true @ E`` would have the same distribution; the
  angle between written and true pose is the angle of ``E``.
* Shift: ``shift_written = shift_true + s * g``, ``g`` a standard 2D Gaussian draw, ``s = median /
  sqrt(2 ln 2)`` (the Rayleigh median) so that the median error magnitude is the requested one.
* Errors that follow the conformation (``corr`` = R in [0, 1]): both scales are multiplied, per
  particle, by ``f = (1 - R + 2 R u) / mean(1 - R + 2 R u)`` with ``u`` in [0, 1] the particle's
  conformation coordinate (``t``, else ``state / (K - 1)``), the mean taken over all particles. R = 0:
  one error distribution for all; R = 1: error scale proportional to ``u`` (none at ``u = 0``). The
  mean of ``f`` is 1, so the median error of the whole set stays near the requested one, not on it
  (uniform ``t``: 6 % lower at R = 0.5; at R = 1, 12 % for angles, 16 % for shifts); the realised
  values are recorded.

Both draws come from one random stream, rotations first, always ``n * 3`` and ``n * 2`` normals: a
seed gives the same error directions whatever the sizes asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryoscape.geometry import angular_distance_deg, rotvec_to_matrix

#: Median of the norm of a standard 3D Gaussian vector (the chi distribution with 3 degrees of freedom).
CHI3_MEDIAN = 1.5381722544550522
#: Median of the norm of a standard 2D Gaussian vector (Rayleigh): sqrt(2 ln 2).
RAYLEIGH_MEDIAN = float(np.sqrt(2 * np.log(2)))


@dataclass(frozen=True)
class PoseError:
    """The poses written to the metadata and how far each is from the truth."""

    rotations: np.ndarray  # (N, 3, 3) written (perturbed) A matrices
    shifts_px: np.ndarray  # (N, 2) written shifts, pixels
    rot_error_deg: np.ndarray  # (N,) geodesic angle between the written and the true rotation
    shift_error_px: np.ndarray  # (N,) |written - true shift|, pixels
    coordinate: str | None = None  # what the error size follows: "t", "state" or None

    def summary(self) -> dict:
        """Realised median and 90th percentile of both errors, for ``simulation.json``."""
        q = lambda x, p: float(np.percentile(x, p))
        return {
            "convention": "A_written = E @ A_true; shift_written = shift_true + error",
            "follows": self.coordinate,
            "rot_median_deg": q(self.rot_error_deg, 50),
            "rot_p90_deg": q(self.rot_error_deg, 90),
            "shift_median_px": q(self.shift_error_px, 50),
            "shift_p90_px": q(self.shift_error_px, 90),
        }


def error_scale(u: np.ndarray, corr: float) -> np.ndarray:
    """``(N,)`` per-particle multiplier of the error scales, ``(1 - R + 2 R u) / mean(...)``, for the
    conformation coordinate ``u`` in [0, 1] and ``corr`` = R in [0, 1]; all ones for R = 0."""
    f = 1.0 - corr + 2.0 * corr * np.asarray(u, np.float64)
    mean = f.mean()
    return f / mean if mean > 0 else np.ones_like(f)  # mean 0: R = 1 and every u = 0, no error to spread


def rotation_errors(n: int, median_deg: float, rng: np.random.Generator, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """``(n, 3, 3)`` error rotations about uniformly random axes whose angles have median
    ``median_deg`` (times ``scale``, per particle); draws ``n * 3`` normals from ``rng``."""
    g = rng.standard_normal((n, 3))
    s = np.deg2rad(median_deg) / CHI3_MEDIAN * np.broadcast_to(scale, (n,))
    return rotvec_to_matrix(g * s[:, None])


def shift_errors(n: int, median_px: float, rng: np.random.Generator, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """``(n, 2)`` isotropic Gaussian shift errors in pixels whose magnitudes have median ``median_px``
    (times ``scale``, per particle); draws ``n * 2`` normals from ``rng``."""
    g = rng.standard_normal((n, 2))
    return g * (median_px / RAYLEIGH_MEDIAN * np.broadcast_to(scale, (n,)))[:, None]


def perturb_poses(
    rotations: np.ndarray,
    shifts_px: np.ndarray,
    rot_median_deg: float,
    shift_median_px: float,
    rng: np.random.Generator,
    scale: np.ndarray | float = 1.0,
    coordinate: str | None = None,
) -> PoseError:
    """The written poses for true ``rotations (N, 3, 3)`` and ``shifts_px (N, 2)``: see the module."""
    n = len(rotations)
    rot = rotation_errors(n, rot_median_deg, rng, scale) @ rotations
    shift_err = shift_errors(n, shift_median_px, rng, scale)
    return PoseError(
        rotations=rot,
        shifts_px=shifts_px + shift_err,
        rot_error_deg=angular_distance_deg(rotations, rot),
        shift_error_px=np.linalg.norm(shift_err, axis=1),
        coordinate=coordinate,
    )
