"""Per-sample sufficient statistics of every metric, and the metric's value from their sums (numpy only).

A metric over a test split is a function of totals summed over its samples. Keeping each sample's row of
statistics lets anyone recompute the metric on a resample of the test set (a bootstrap) by summing rows:

=============== =========================== ===========================================================
metric          row of one sample           value from the totals
=============== =========================== ===========================================================
top1            (correct, 1)                correct / count
miou            (tp_c, fp_c, fn_c) per c    mean over classes with tp + fp + fn > 0 of tp / (tp + fp + fn)
miou_no_bg      as miou                     as miou, class 0 (background) left out
iou             (tp, fp, fn)                tp / (tp + fp + fn)   (0 when the union is empty)
l1              (Σ|ŷ − y|, valid pixels)    Σ|ŷ − y| / valid pixels
flow_acc        (good pixels, valid pixels) good / valid
within          (good pixels, valid pixels) good / valid
=============== =========================== ===========================================================

``value_from_totals`` is the formula the accumulators of ``contrasting.eval.catalog.metrics`` use for their own result,
so the bootstrap and the reported value cannot disagree.
"""

from __future__ import annotations

import warnings

import numpy as np

SAMPLE_FIELDS = {"top1": "correct, count", "miou": "tp[C], fp[C], fn[C]", "miou_no_bg": "tp[C], fp[C], fn[C]",
                 "iou": "tp, fp, fn", "l1": "abs_error_sum, count", "flow_acc": "good, count",
                 "within": "good, count"}


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), empty)


def _miou(totals: np.ndarray, skip_background: bool) -> np.ndarray:
    c = totals.shape[-1] // 3
    tp, fp, fn = totals[..., :c], totals[..., c:2 * c], totals[..., 2 * c:]
    union = tp + fp + fn
    iou = _ratio(tp, union, np.nan)
    if skip_background:
        iou = iou[..., 1:]
    with warnings.catch_warnings():  # all-NaN rows (no class present) are 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        out = np.nanmean(iou, axis=-1)
    return np.where(np.isnan(out), 0.0, out)


def value_from_totals(metric: str, totals: np.ndarray) -> np.ndarray:
    """The metric from per-sample statistics summed over a split (or over each resample: leading axes are kept)."""
    t = np.asarray(totals, dtype=np.float64)
    if metric == "top1":
        return _ratio(t[..., 0], t[..., 1], np.nan)
    if metric in ("miou", "miou_no_bg"):
        return _miou(t, metric == "miou_no_bg")
    if metric == "iou":
        return _ratio(t[..., 0], t[..., 0] + t[..., 1] + t[..., 2], 0.0)
    if metric in ("l1", "flow_acc", "within"):
        return _ratio(t[..., 0], t[..., 1], np.nan)
    raise ValueError(f"metric: no per-sample statistics for {metric!r} (known: {', '.join(SAMPLE_FIELDS)})")


def resample_values(metric: str, stats: np.ndarray, weights: np.ndarray, chunk: int = 256) -> np.ndarray:
    """The metric on each resample: ``weights`` (B, n) counts how often each sample is drawn (a multinomial
    bootstrap), ``stats`` (n, k) the per-sample rows; returns (B,)."""
    stats = np.asarray(stats, dtype=np.float64)
    out = np.empty(len(weights))
    for start in range(0, len(weights), chunk):
        out[start:start + chunk] = value_from_totals(metric, weights[start:start + chunk] @ stats)
    return out


def bootstrap_weights(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, n) multinomial counts: how often each of ``n`` test samples is drawn in each resample."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(np.float64)


def standard_error(metric: str, stats: np.ndarray, replicates: int = 1000, seed: int = 0) -> float:
    """Bootstrap standard error of the metric over the test samples (``replicates`` resamples, fixed ``seed``)."""
    stats = np.asarray(stats, dtype=np.float64)
    if len(stats) < 2:
        return float("nan")
    w = bootstrap_weights(len(stats), replicates, np.random.default_rng(seed))
    return float(np.nanstd(resample_values(metric, stats, w), ddof=1))


def encode_samples(metric: str, stats: np.ndarray) -> dict:
    """A JSON-able record of per-sample statistics (base64 of the little-endian array: int32 when every value is
    an integer, else float64)."""
    import base64

    a = np.asarray(stats)
    a = a.reshape(len(a), -1)
    dtype = "<i4" if np.all(np.mod(a, 1) == 0) and np.abs(a).max(initial=0) < 2**31 else "<f8"
    return {"metric": metric, "shape": list(a.shape), "dtype": dtype,
            "data": base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")}


def decode_samples(record: dict) -> tuple[str, np.ndarray]:
    """(metric, stats) of an ``encode_samples`` record; ValueError when it is malformed."""
    import base64

    try:
        shape = tuple(int(v) for v in record["shape"])
        a = np.frombuffer(base64.b64decode(record["data"]), dtype=np.dtype(record["dtype"]))
        return str(record["metric"]), a.reshape(shape).astype(np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"malformed per-sample record: {e}") from None
