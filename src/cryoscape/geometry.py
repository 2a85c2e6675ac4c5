"""Pose conventions, in one place (numpy only, no torch).

cryoscape stores a particle's orientation as the 3x3 matrix ``A`` that RELION builds from its
Euler angles (``_rlnAngleRot``, ``_rlnAngleTilt``, ``_rlnAnglePsi``; ZYZ, degrees):

    A = Rz(-psi) @ Ry(-tilt) @ Rz(-rot)

with ``Rz``/``Ry`` the usual right-handed active rotations. ``A`` maps volume coordinates to
image coordinates; the 2D Fourier transform of the projection is the central slice

    F_img(k) = F_vol(A.T @ k),   k = (kx, ky, 0),

so the volume coordinates of an image's Fourier lattice are ``k @ A`` (row vectors). This is
exactly the rotation matrix cryoDRGN pickles store. cryoSPARC stores the pose as an axis-angle
(Rodrigues) vector whose matrix is ``A.T``.

Shifts: ``shift_A = (_rlnOriginXAngst, _rlnOriginYAngst)``. The particle sits at ``-shift`` from
the box centre; translating the image by ``+shift`` centres it. cryoSPARC's
``alignments3D/shift`` (pixels) and cryoDRGN's ``trans`` (fraction of the box) use the same sign.
"""

from __future__ import annotations

import numpy as np


def _as_batch(a: np.ndarray, tail: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    a = np.asarray(a, dtype=np.float64)
    single = a.shape == tail
    return (a[None] if single else a), single


def euler_to_matrix(euler_deg: np.ndarray) -> np.ndarray:
    """RELION (rot, tilt, psi) in degrees, shape (N, 3) or (3,) -> A, shape (N, 3, 3) or (3, 3)."""
    e, single = _as_batch(euler_deg, (3,))
    a, b, g = np.deg2rad(e).T
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    m = np.empty((len(e), 3, 3))
    m[:, 0, 0] = cg * cc - sg * sa
    m[:, 0, 1] = cg * cs + sg * ca
    m[:, 0, 2] = -cg * sb
    m[:, 1, 0] = -sg * cc - cg * sa
    m[:, 1, 1] = -sg * cs + cg * ca
    m[:, 1, 2] = sg * sb
    m[:, 2, 0] = sc
    m[:, 2, 1] = ss
    m[:, 2, 2] = cb
    return m[0] if single else m


def matrix_to_euler(mat: np.ndarray) -> np.ndarray:
    """A, shape (N, 3, 3) or (3, 3) -> RELION (rot, tilt, psi) in degrees, tilt in [0, 180].

    At tilt 0 or 180 only rot+psi (or rot-psi) is defined; psi is then set to 0.
    """
    m, single = _as_batch(mat, (3, 3))
    tilt = np.arccos(np.clip(m[:, 2, 2], -1.0, 1.0))
    rot = np.arctan2(m[:, 2, 1], m[:, 2, 0])
    psi = np.arctan2(m[:, 1, 2], -m[:, 0, 2])
    gimbal = np.abs(np.sin(tilt)) < 1e-6
    if gimbal.any():
        # A = Rz(-psi) Rz(-/+rot) at tilt 0/180: put everything into rot, psi = 0
        sgn = np.sign(m[gimbal, 2, 2])
        rot[gimbal] = np.arctan2(sgn * m[gimbal, 0, 1], sgn * m[gimbal, 0, 0])
        psi[gimbal] = 0.0
    e = np.rad2deg(np.stack([rot, tilt, psi], axis=1))
    return e[0] if single else e


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues axis-angle vectors (N, 3), radians -> rotation matrices (N, 3, 3)."""
    v, single = _as_batch(rotvec, (3,))
    theta = np.linalg.norm(v, axis=1)
    k = v / np.where(theta > 0, theta, 1.0)[:, None]
    kx = np.zeros((len(v), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx = kx - kx.transpose(0, 2, 1)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    m = np.eye(3)[None] + s * kx + (1 - c) * (kx @ kx)
    return m[0] if single else m


def matrix_to_rotvec(mat: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) -> Rodrigues vectors (N, 3), radians, angle in [0, pi]."""
    from scipy.spatial.transform import Rotation

    m, single = _as_batch(mat, (3, 3))
    v = Rotation.from_matrix(m).as_rotvec()
    return v[0] if single else v


def cryosparc_pose_to_matrix(pose: np.ndarray) -> np.ndarray:
    """cryoSPARC ``alignments3D/pose`` (N, 3) -> cryoscape/RELION/cryoDRGN matrix A (N, 3, 3)."""
    return np.swapaxes(rotvec_to_matrix(pose), -1, -2)


def matrix_to_cryosparc_pose(mat: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cryosparc_pose_to_matrix`."""
    return matrix_to_rotvec(np.swapaxes(np.asarray(mat), -1, -2))


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rotation matrices drawn uniformly from SO(3) (Haar measure), shape (n, 3, 3)."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def angular_distance_deg(r1: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees, in [0, 180], between rotations ``r1`` and ``r2`` ((N, 3, 3) or (3, 3),
    broadcast): the angle of ``M = r1.T @ r2``, ``arccos((trace(M) - 1) / 2)``.

    Computed as ``atan2(|M - M.T| / sqrt(2), trace(M) - 1)``: the same angle, but arccos is ill-conditioned
    near 0, where pose errors live: a float32 copy of a rotation (a pose pickle) is 0.01° from the original
    by arccos, 2e-6° by this."""
    a, b = np.asarray(r1, np.float64), np.asarray(r2, np.float64)
    m = np.swapaxes(a, -1, -2) @ b
    skew = m - np.swapaxes(m, -1, -2)
    sin2 = np.sqrt(np.square(skew).sum((-2, -1)) / 2)  # 2 sin(theta)
    cos2 = np.trace(m, axis1=-2, axis2=-1) - 1  # 2 cos(theta)
    return np.rad2deg(np.arctan2(sin2, cos2))
