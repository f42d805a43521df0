"""Fixtures shared by the loss tests."""

from __future__ import annotations

import pytest

from contrasting.losses import sinkhorn_triton, soft_target_ce_triton


@pytest.fixture
def sinkhorn_small_blocks(monkeypatch):
    """4×8 tiles and ≤ 6 column-pass programs in every Sinkhorn/SwAV kernel: small shapes span several row and
    prototype blocks and loop inside a split."""
    def tiny(dtype, kernel):
        return sinkhorn_triton.KernelConfig(4, 8, 1, 1)

    monkeypatch.setattr(sinkhorn_triton, "select_config", tiny)
    monkeypatch.setattr(soft_target_ce_triton, "select_config", tiny)
    monkeypatch.setattr(sinkhorn_triton, "TARGET_PROGRAMS", 6)
