"""cryoscape: heterogeneous single-particle cryo-EM reconstruction.

Data flows through the subpackages in this order:
``io`` (files) -> ``data`` (particle tensors) -> ``fourier`` (lattice, FFT, CTF, slicing)
-> ``model`` (networks) -> ``train`` (the one training loop) -> ``recon``/``analysis``
(maps, FSC, latent space) -> ``viz`` -> ``cli`` (thin commands).
"""

__version__ = "0.1.0"
