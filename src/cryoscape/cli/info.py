"""Show what cryoscape reads from a particle file: format, counts, optics, poses, CTF, stacks.

Prints the file format and version, particle count, box and pixel size per optics group, whether
poses, shifts and CTF are present with their ranges, which image stacks were found, and a
WARNING line for anything that looks wrong (missing stacks, pixel size mismatches, duplicate
particles, zero defocus, shifts beyond a quarter box, NaN in the metadata). Also describes a
map (.mrc volume: box, voxel size, density range) and cryoDRGN pose, CTF and index pickles.
"""

from __future__ import annotations

import argparse

from cryoscape.cli.common import particle_options
from cryoscape.cli.options import add_particles


def add_args(p: argparse.ArgumentParser) -> None:
    add_particles(p)


def main(args: argparse.Namespace) -> int:
    from cryoscape.io.describe import describe_file

    print("\n".join(describe_file(args.particles, **particle_options(args))))
    return 0
