"""Metrics accumulated over a whole split, batch by batch, so that no result depends on the batch size.

Every metric is an accumulator: ``update(output, target)`` per batch, ``compute() -> dict`` once at the end.
``compute()`` returns the metric's own value under its name plus any companions; ``score`` in results is
the value signed so that higher is better (``METRICS[name].higher_is_better``).

* top-1:  acc = #{argmax_c z_ic = y_i} / N.
* mIoU from the confusion matrix C (rows = target, columns = prediction, pixels with the ignore index
  left out), accumulated over the whole split:
      IoU_c = C_cc / (Σ_j C_cj + Σ_i C_ic − C_cc),  mIoU = mean of IoU_c over classes with a non-empty union
  (classes absent from both target and prediction do not count — scikit-learn's ``jaccard_score(average=
  "macro")`` on the flattened pixels). ``miou_no_bg`` leaves class 0 out of the mean.
* binary IoU: predicted positive ⇔ logit > 0; IoU = TP / (TP + FP + FN) over all valid pixels of the split.
* L1: Σ |ŷ − y| / #valid over all valid pixels (NaN targets are invalid); lower is better.
* KITTI-style flow accuracy: share of valid pixels whose end-point error EPE = ‖f̂ − f‖₂ is below 3 px or
  below 5 % of ‖f‖₂ (1 − KITTI's Fl outlier rate); EPE is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


class Top1:
    """Top-1 accuracy of logits (N, C) against labels (N,)."""

    name = "top1"

    def __init__(self, **_):
        self.correct, self.total = 0, 0

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.correct += int((logits.argmax(dim=1) == target).sum())
        self.total += int(target.numel())

    def compute(self) -> dict[str, float]:
        return {"top1": self.correct / max(self.total, 1)}


class ConfusionMatrix:
    """Confusion matrix over a split for logits (B, C, H, W) and targets (B, H, W); see the module docstring."""

    name = "miou"

    def __init__(self, num_classes: int, ignore_index: int = 255, background: int | None = None, **_):
        self.num_classes, self.ignore_index, self.background = num_classes, ignore_index, background
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        self.update_labels(logits.argmax(dim=1), target)

    def update_labels(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add predicted and target label maps: C[t, p] += 1 for every pixel with a valid target."""
        pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
        keep = (target != self.ignore_index) & (target >= 0) & (target < self.num_classes)
        c = self.num_classes
        idx = target[keep] * c + pred[keep].clamp(0, c - 1)
        self.matrix += torch.bincount(idx.cpu(), minlength=c * c).view(c, c)

    def iou(self) -> torch.Tensor:
        """Per-class IoU (NaN where the union is empty)."""
        m = self.matrix.double()
        inter = m.diag()
        union = m.sum(0) + m.sum(1) - inter
        return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(inter, float("nan")))

    def compute(self) -> dict[str, float]:
        iou = self.iou()
        total = self.matrix.sum()
        out = {"miou": float(iou.nanmean()) if bool((~iou.isnan()).any()) else 0.0,
               "pixel_acc": float(self.matrix.diag().sum() / total) if total > 0 else 0.0}
        if self.background is not None:
            rest = torch.cat([iou[: self.background], iou[self.background + 1:]])
            out["miou_no_bg"] = float(rest.nanmean()) if bool((~rest.isnan()).any()) else 0.0
        return out


class BinaryIoU:
    """IoU of the positive class for logits (B, 1, H, W) or (B, H, W) against {0, 1} targets (B, H, W)."""

    name = "iou"

    def __init__(self, ignore_index: int = 255, **_):
        self.ignore_index = ignore_index
        self.tp = self.fp = self.fn = 0

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pred = logits.reshape(target.shape) > 0
        valid = target != self.ignore_index
        t = target > 0.5
        self.tp += int((pred & t & valid).sum())
        self.fp += int((pred & ~t & valid).sum())
        self.fn += int((~pred & t & valid).sum())

    def compute(self) -> dict[str, float]:
        union = self.tp + self.fp + self.fn
        return {"iou": self.tp / union if union else 0.0}


class L1:
    """Mean absolute error over valid (finite) target pixels of the split; lower is better."""

    name = "l1"

    def __init__(self, **_):
        self.total, self.count = 0.0, 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        pred = pred.reshape(target.shape).double()
        valid = torch.isfinite(target)
        self.total += float((pred - target.double()).abs()[valid].sum())
        self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        return {"l1": self.total / self.count if self.count else float("nan")}


class FlowAccuracy:
    """KITTI-style flow accuracy of predictions (B, 2, H, W) against targets (B, 3, H, W) = (u, v, valid)."""

    name = "flow_acc"

    def __init__(self, abs_threshold: float = 3.0, rel_threshold: float = 0.05, **_):
        self.abs_threshold, self.rel_threshold = abs_threshold, rel_threshold
        self.good, self.count, self.epe_sum = 0, 0, 0.0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        flow, valid = target[:, :2].double(), target[:, 2] > 0.5
        epe = (pred.double() - flow).norm(dim=1)
        mag = flow.norm(dim=1)
        good = (epe < self.abs_threshold) | (epe < self.rel_threshold * mag)
        self.good += int((good & valid).sum())
        self.count += int(valid.sum())
        self.epe_sum += float(epe[valid].sum())

    def compute(self) -> dict[str, float]:
        if not self.count:
            return {"flow_acc": float("nan"), "epe": float("nan")}
        return {"flow_acc": self.good / self.count, "epe": self.epe_sum / self.count}


@dataclass(frozen=True)
class MetricInfo:
    """A metric's accumulator factory (``make(num_classes=..., ignore_index=...)``) and direction."""

    make: Callable
    higher_is_better: bool


METRICS: dict[str, MetricInfo] = {
    "top1": MetricInfo(Top1, True),
    "miou": MetricInfo(ConfusionMatrix, True),
    "miou_no_bg": MetricInfo(lambda **kw: ConfusionMatrix(background=0, **kw), True),
    "iou": MetricInfo(BinaryIoU, True),
    "l1": MetricInfo(L1, False),
    "flow_acc": MetricInfo(FlowAccuracy, True),
}


def make_metric(name: str, *, num_classes: int | None = None, ignore_index: int = 255):
    """A fresh accumulator for metric ``name``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
    kw = {"ignore_index": ignore_index}
    if num_classes is not None:
        kw["num_classes"] = num_classes
    return METRICS[name].make(**kw)


def signed_score(name: str, value: float) -> float:
    """``value`` if higher is better for ``name``, else ``−value``: the one number to maximise."""
    return value if METRICS[name].higher_is_better else -value
