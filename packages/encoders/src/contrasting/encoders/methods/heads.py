"""Projection heads of the methods: MLPs on the pooled embedding."""

from __future__ import annotations

from torch import nn


def projection_mlp(in_dim: int, hidden_dim: int, out_dim: int, *, batch_norm: bool) -> nn.Sequential:
    """Linear(in, hidden) → [BatchNorm1d] → ReLU → Linear(hidden, out).

    SimCLR (Chen et al. 2020, App. B.9) and SwAV (Caron et al. 2020, ``projection_head``) use the
    BatchNorm; MoCo v2's head (Chen et al. 2020b) has none.
    """
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden_dim))
    layers += [nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)]
    return nn.Sequential(*layers)


def bn_projector(embed_dim: int, config) -> nn.Sequential:
    """SimCLR's and SwAV's projector: ``projection_mlp`` with BatchNorm from the backbone's ``embed_dim`` to
    ``config.projection_dim`` through ``config.projection_hidden`` units (None: ``embed_dim``, the papers' width)."""
    return projection_mlp(embed_dim, config.projection_hidden or embed_dim, config.projection_dim, batch_norm=True)
