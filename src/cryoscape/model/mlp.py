"""Fully connected building blocks shared by the encoder and the decoder."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "elu": nn.ELU,
}


def make_activation(name: str) -> nn.Module:
    """The activation named by ``ModelConfig.activation``."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


class ResidualStack(nn.Module):
    """``n_layers`` blocks ``h <- h + act(W h + b)`` of constant width.

    Residual blocks keep gradients flowing at depth and let the identity be the easy default.
    ``h: (..., width)`` -> ``(..., width)``.
    """

    def __init__(self, width: int, n_layers: int, activation: str) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(n_layers))
        self.act = make_activation(activation)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            h = h + self.act(layer(h))
        return h


class MLP(nn.Module):
    """``in_dim -> width`` (+ activation), ``depth - 1`` residual blocks, linear ``width -> out_dim``.

    ``depth`` counts hidden layers. ``x: (..., in_dim)`` -> ``(..., out_dim)``.
    """

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int, activation: str) -> None:
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.act = make_activation(activation)
        self.body = ResidualStack(width, depth - 1, activation)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.act(self.inp(x))))
