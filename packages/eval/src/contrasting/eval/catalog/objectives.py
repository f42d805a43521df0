"""Training losses of the end tasks, by the name a ``TaskSpec`` gives in ``loss``.

Shapes: ``out`` is the head's output resized to the target (classification (N, C); maps (N, C, H, W)).

* ``ce``: mean over non-ignored samples/pixels of −log softmax(z)_y.
* ``weighted_ce``: Σ_i w_{y_i}·(−log softmax(z_i)_{y_i}) / Σ_i w_{y_i} with median-frequency weights
  w_c = median_k f_k / f_c from the training targets (``class_weights``); EgoHands' background dominates.
* ``bce``: binary cross-entropy with logits over pixels whose target is not the ignore index.
* ``l1``: mean |ŷ − y| over finite target pixels (missing depth is NaN).
* ``l1_valid``: flow, mean over valid pixels and both components of |f̂ − f| (target (N, 3, H, W) = u, v, valid).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from contrasting.eval.catalog.tasks import TaskSpec


def class_weights(targets, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """Median-frequency balancing weights w_c = median(f) / f_c from label maps (classes never seen get 1); used
    by ``weighted_ce`` tasks that do not fix their weights in ``loss_options["class_weights"]``."""
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for t in targets:
        t = t.reshape(-1).long()
        t = t[(t != ignore_index) & (t >= 0) & (t < num_classes)]
        counts += torch.bincount(t, minlength=num_classes).double()
    seen = counts > 0
    if not bool(seen.any()):
        return torch.ones(num_classes)
    freq = counts / counts.sum()
    w = torch.ones(num_classes, dtype=torch.float64)
    w[seen] = freq[seen].median() / freq[seen]
    return w.float()


def _ce(spec: TaskSpec, weight=None):
    def loss(out, target):
        return F.cross_entropy(out.float(), target.long(), weight=weight, ignore_index=spec.ignore_index)
    return loss


def _bce(spec: TaskSpec, weight=None):
    def loss(out, target):
        out = out.float().reshape(target.shape)
        valid = target != spec.ignore_index
        return F.binary_cross_entropy_with_logits(out[valid], target[valid].float())
    return loss


def _l1(spec: TaskSpec, weight=None):
    def loss(out, target):
        out = out.float().reshape(target.shape)
        valid = torch.isfinite(target)
        if not bool(valid.any()):
            return out.sum() * 0.0
        return (out[valid] - target[valid]).abs().mean()
    return loss


def _l1_valid(spec: TaskSpec, weight=None):
    def loss(out, target):
        valid = (target[:, 2:3] > 0.5).expand_as(out)
        if not bool(valid.any()):
            return out.sum() * 0.0
        return (out.float() - target[:, :2])[valid].abs().mean()
    return loss


LOSSES: dict[str, Callable] = {"ce": _ce, "weighted_ce": _ce, "bce": _bce, "l1": _l1, "l1_valid": _l1_valid}


def make_loss(spec: TaskSpec, weight: torch.Tensor | None = None) -> Callable:
    """The loss ``spec.loss`` as ``fn(out, target) -> scalar``; ``weight`` only for ``weighted_ce``."""
    if spec.loss not in LOSSES:
        raise ValueError(f"task {spec.name!r}: unknown loss {spec.loss!r}; known: {sorted(LOSSES)}")
    return LOSSES[spec.loss](spec, weight if spec.loss == "weighted_ce" else None)
