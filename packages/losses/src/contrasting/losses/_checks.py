"""Argument validation shared by every loss: clear errors that name the argument and what was expected."""

from __future__ import annotations

import math

import torch

BACKENDS = ("auto", "triton", "torch")
REDUCTIONS = ("mean", "sum", "none")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_matrix(name: str, t, *, like: torch.Tensor | None = None, like_name: str = "",
                 axes: tuple[str, str, str] = ("row", "feature", "D")) -> None:
    """``t`` is a non-empty 2-D floating tensor, on ``like``'s device and of its dtype and width.

    ``axes`` names a row, a column and the width's symbol in the messages, e.g. ("sample", "prototype", "K").
    """
    row, col, width = axes
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape ({row}s, {col}s), got {type(t).__name__}")
    if t.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D tensor ({row}s, {col}s), got shape {tuple(t.shape)}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a floating dtype (float16, bfloat16, float32, float64), got {t.dtype}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one {row} and one {col}, "
                         f"got an empty batch of shape {tuple(t.shape)}")
    if like is None:
        return
    if t.device != like.device:
        raise ValueError(f"{name}: is on {t.device} but {like_name} is on {like.device}; expected one device")
    if t.dtype != like.dtype:
        raise TypeError(f"{name}: has dtype {t.dtype} but {like_name} has {like.dtype}; expected one dtype")
    if t.shape[1] != like.shape[1]:
        raise ValueError(f"{name}: has {width}={t.shape[1]} {col}s but {like_name} has {width}={like.shape[1]}; "
                         f"expected equal {width}")


def check_same_rows(name: str, t: torch.Tensor, like_name: str, like: torch.Tensor) -> None:
    """``t`` and ``like`` are aligned row by row (positives)."""
    if t.shape[0] != like.shape[0]:
        raise ValueError(
            f"{name}: has {t.shape[0]} rows but {like_name} has {like.shape[0]}; expected aligned positive pairs"
        )


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


def scale_from_temperature(temperature, like: torch.Tensor, name: str = "temperature") -> torch.Tensor:
    """σ = 1/τ as a 1-element tensor in the compute dtype; keeps τ's autograd graph when it is a tensor.

    Checks τ > 0 and finite (for a tensor this reads one scalar from its device).
    """
    cdt = torch.float64 if like.dtype == torch.float64 else torch.float32
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"{name}: expected a float or a 1-element tensor, got shape {tuple(temperature.shape)}")
        if not temperature.is_floating_point():
            raise TypeError(f"{name}: expected a floating tensor, got {temperature.dtype}")
        value = float(temperature.detach())
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a finite value > 0, got {value}")
        return (1.0 / temperature.to(device=like.device, dtype=cdt)).reshape(1)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"{name}: expected a float or a 1-element tensor, got {type(temperature).__name__}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"{name}: expected a finite value > 0, got {temperature}")
    return torch.full((1,), 1.0 / temperature, dtype=cdt, device=like.device)


def raise_if_nonfinite(result: torch.Tensor, inputs: dict[str, torch.Tensor]) -> None:
    """Cheap NaN/Inf guard: looks at the per-row result; only if it is bad, names the offending input."""
    if bool(torch.isfinite(result).all()):
        return
    for name, t in inputs.items():
        if t is not None and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: contains NaN or Inf; expected finite values")
    raise ValueError(
        "loss is not finite although every input is: the inputs overflow their dtype "
        f"({next(iter(inputs.values())).dtype}); use float32 or a larger temperature"
    )


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Per-row losses reduced by ``reduction``: "mean", "sum", or "none" (returned as they are)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
