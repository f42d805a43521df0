"""swav_loss and SwAVLoss: SwAV's swapped prediction with a stable, fused Sinkhorn and a fused soft-target CE.

Views u = 0..V−1 (the first ones the large crops), each with scores s_u (B×K) = embeddings · prototypesᵀ;
A = ``assign_views`` (SwAV's ``crops_for_assign``), T = temperature. For v ∈ A the target

    q_v = sinkhorn(cat(queue_v, s_v))[−B:]          (``sinkhorn``; queue rows only shape the equipartition)

and the loss, SwAV's, is

    L = 1/|A| Σ_{v∈A} 1/(V−1) Σ_{u≠v} mean_b −Σ_k q_v,bk · log_softmax(s_u/T)_bk.

Grouped by predicted view u, with t_u = Σ_{v∈A, v≠u} q_v (c_u = |A| − [u∈A] distributions, so each row
of t_u sums to c_u) and lse_u,b = log Σ_k exp(s_u,bk/T):

    L = 1/(|A|(V−1)) Σ_u mean_b [c_u·lse_u,b − (1/T) Σ_k t_u,bk s_u,bk],

one pass per view reading s_u and t_u once (``soft_target_ce_*``), instead of SwAV's |A|·(V−1)
log_softmax matrices. Gradients flow to the scores through the log_softmax part only (the targets are
constants): ∂L/∂s_u = (c_u·softmax(s_u/T) − t_u) / (T·B·|A|·(V−1)).

Distributed: with ``process_group`` each rank passes its local batch (equal B on every rank); the
Sinkhorn sums over prototypes run over all ranks (see ``sinkhorn``), the loss is this rank's mean, so
data-parallel gradient averaging gives the gradient of the mean over the global batch. Each rank's
queue holds its own samples, as in SwAV.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .infonce import resolve_backend
from .sinkhorn import check_iterations, check_positive, check_scores, raise_nonfinite, solve
from .soft_target_ce_torch import soft_target_ce_torch


def _soft_target_ce_triton(scores, target, count, temperature):
    from .soft_target_ce_triton import soft_target_ce_triton  # imported lazily: CPU-only installs may lack triton

    return soft_target_ce_triton(scores, target, count, temperature)


# Dispatch table: backend name → per-row soft-target cross-entropy (scores, target, count, T) → (B,).
SOFT_TARGET_CE = {"torch": soft_target_ce_torch, "triton": _soft_target_ce_triton}


def _sum(codes: list[torch.Tensor]) -> torch.Tensor:
    if len(codes) == 1:
        return codes[0]
    total = codes[0] + codes[1]
    for q in codes[2:]:
        total += q
    return total


def _check_views(scores) -> list[torch.Tensor]:
    if isinstance(scores, torch.Tensor) or not isinstance(scores, Sequence):
        raise TypeError("scores: expected a sequence of (B, K) tensors, one per view "
                        f"(e.g. list(scores.chunk(V))), got {type(scores).__name__}")
    views = list(scores)
    if len(views) < 2:
        raise ValueError(f"scores: expected at least 2 views (one to assign, one to predict), "
                         f"got {len(views)}")
    check_scores("scores[0]", views[0])
    for i, s in enumerate(views[1:], start=1):
        check_scores(f"scores[{i}]", s, like=views[0], like_name="scores[0]")
        if s.shape[0] != views[0].shape[0]:
            raise ValueError(f"scores[{i}]: has B={s.shape[0]} rows but scores[0] has B={views[0].shape[0]}; "
                             "expected the same batch in every view")
    return views


def _check_assign_views(assign_views, n_views: int) -> tuple[int, ...]:
    if isinstance(assign_views, (str, bytes)) or not isinstance(assign_views, Sequence):
        raise TypeError("assign_views: expected a sequence of view indices, "
                        f"got {type(assign_views).__name__}")
    out = tuple(assign_views)
    if not out:
        raise ValueError("assign_views: expected at least one view index, got an empty sequence")
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"assign_views: expected int view indices, got {v!r}")
        if not 0 <= v < n_views:
            raise ValueError(f"assign_views: index {v} is out of range for {n_views} views; "
                             f"expected 0 <= v < {n_views}")
    if len(set(out)) != len(out):
        raise ValueError(f"assign_views: expected distinct view indices, got {out}")
    return out


def _check_queue(queue, assign: tuple[int, ...], like: torch.Tensor) -> list[torch.Tensor | None]:
    if queue is None:
        return [None] * len(assign)
    if isinstance(queue, torch.Tensor):
        check_scores("queue", queue, like=like, like_name="scores[0]")
        return [queue] * len(assign)
    if not isinstance(queue, Sequence) or len(queue) != len(assign):
        raise ValueError(f"queue: expected None, one (Nq, K) tensor or a sequence of {len(assign)} "
                         "(one per assign view, entries may be None)")
    for i, q in enumerate(queue):
        if q is not None:
            check_scores(f"queue[{i}]", q, like=like, like_name="scores[0]")
    return list(queue)


def swav_loss(
    scores: Sequence[torch.Tensor],
    *,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    assign_views: Sequence[int] = (0, 1),
    queue: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
    process_group=None,
    backend: str = "auto",
    check_finite: bool = True,
) -> torch.Tensor:
    """SwAV's swapped-prediction loss over the views' scores (module docstring); a scalar, float32 for half.

    ``scores``: one (B, K) tensor per view. ``assign_views``: the views whose Sinkhorn codes are the
    targets (SwAV's crops_for_assign). ``queue``: None, one (Nq, K) tensor of queue scores (queue
    embeddings · prototypesᵀ, no gradient) prepended before the Sinkhorn of every assign view, or one per
    assign view. ``epsilon`` and ``sinkhorn_iterations`` go to ``sinkhorn``; ``process_group`` makes its
    prototype sums global. ``check_finite`` raises naming the view or queue with NaN/Inf scores (it reads
    one flag per assign view and one for the loss from the device).
    """
    views = _check_views(scores)
    assign = _check_assign_views(assign_views, len(views))
    queues = _check_queue(queue, assign, views[0])
    inv_t = 1.0 / check_positive("temperature", temperature)
    eps = check_positive("epsilon", epsilon)
    iters = check_iterations("sinkhorn_iterations", sinkhorn_iterations)
    impl = resolve_backend(backend, views[0])

    b = views[0].shape[0]
    codes = {}
    for i, v in enumerate(assign):
        out, names = views[v].detach(), {f"scores[{v}]": views[v]}
        if queues[i] is not None:
            out = torch.cat([queues[i].detach(), out])
            names[f"queue[{i}]" if not isinstance(queue, torch.Tensor) else "queue"] = queues[i]
        codes[v] = solve(out, eps, iters, process_group, impl, b, check_finite, names)

    ce = SOFT_TARGET_CE[impl]
    everything = None
    total = 0
    for u, s in enumerate(views):
        others = [codes[v] for v in assign if v != u]
        if not others:
            continue
        if len(others) == len(assign):  # every non-assign view shares the sum of all codes: build it once
            if everything is None:
                everything = _sum(others)
            target = everything
        else:
            target = _sum(others)
        total = total + ce(s, target, len(others), 1.0 / inv_t).sum()
    loss = total / (b * len(assign) * (len(views) - 1))
    if check_finite and not bool(torch.isfinite(loss)):
        raise_nonfinite({f"scores[{u}]": s for u, s in enumerate(views)})
    return loss


class SwAVLoss(nn.Module):
    """``swav_loss`` with SwAV's queue of past embeddings, for training loops in the lightly/solo-learn style.

    ``queue_length`` rows per assign view (per rank: SwAV's queue_length // world_size), of
    ``feature_dim`` features, kept newest first in the buffer ``queue`` (len(assign_views), L, D)::

        criterion = SwAVLoss(queue_length=3840, feature_dim=128)
        loss = criterion(scores, embeddings=z, prototypes=model.prototypes.weight,
                         use_queue=epoch >= 15)

    ``forward(scores, embeddings=None, prototypes=None, use_queue=True)``: ``scores`` one (B, K) tensor
    per view; ``embeddings`` one (B, D) tensor per view (aligned with ``scores``; only the assign views
    are read, the others may be None); ``prototypes`` the (K, D) prototype weight (or a module with
    ``.weight``). With a queue and ``use_queue`` (SwAV: from ``epoch_queue_starts`` on) the assign views'
    embeddings are pushed after the loss is computed, and once the queue is full its scores
    (queue · prototypesᵀ, no gradient) are prepended to each assign view's Sinkhorn, as in SwAV. With
    ``use_queue=False`` the queue is neither read nor filled. The fill level is saved in the state dict.
    """

    def __init__(self, temperature: float = 0.1, *, epsilon: float = 0.05, sinkhorn_iterations: int = 3,
                 assign_views: Sequence[int] = (0, 1), queue_length: int = 0, feature_dim: int | None = None,
                 process_group=None, backend: str = "auto"):
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.assign_views = tuple(assign_views)
        self.kwargs = dict(epsilon=epsilon, sinkhorn_iterations=sinkhorn_iterations,
                           assign_views=self.assign_views, process_group=process_group, backend=backend)
        if isinstance(queue_length, bool) or not isinstance(queue_length, int) or queue_length < 0:
            raise ValueError(f"queue_length: expected an int >= 0, got {queue_length!r}")
        if queue_length > 0:
            if isinstance(feature_dim, bool) or not isinstance(feature_dim, int) or feature_dim < 1:
                raise ValueError(f"feature_dim: expected an int >= 1 when queue_length > 0, "
                                 f"got {feature_dim!r}")
            self.register_buffer("queue", torch.zeros(len(self.assign_views), queue_length, feature_dim))
        else:
            self.queue = None
        self.filled = 0  # rows of the queue holding embeddings (the same for every assign view)

    @property
    def queue_full(self) -> bool:
        return self.queue is not None and self.filled >= self.queue.shape[1]

    def get_extra_state(self):
        return {"filled": self.filled}

    def set_extra_state(self, state):
        self.filled = int(state["filled"])

    @torch.no_grad()
    def push(self, embeddings: Sequence[torch.Tensor]) -> None:
        """Put one (B, D) tensor per assign view at the front of its queue (FIFO, newest first)."""
        if len(embeddings) != len(self.assign_views):
            raise ValueError(f"embeddings: expected {len(self.assign_views)} tensors (one per assign view), "
                             f"got {len(embeddings)}")
        length, dim = self.queue.shape[1:]
        for i, e in enumerate(embeddings):
            if not isinstance(e, torch.Tensor) or e.dim() != 2 or e.shape[1] != dim:
                shape = tuple(e.shape) if isinstance(e, torch.Tensor) else type(e).__name__
                raise ValueError(f"embeddings[{self.assign_views[i]}]: expected a (B, {dim}) tensor, "
                                 f"got {shape}")
            n = min(e.shape[0], length)
            self.queue[i, n:] = self.queue[i, : length - n].clone()
            self.queue[i, :n] = e[:n].detach().to(self.queue.dtype)
        self.filled = min(length, self.filled + embeddings[0].shape[0])

    def forward(self, scores: Sequence[torch.Tensor], embeddings: Sequence[torch.Tensor | None] | None = None,
                prototypes=None, use_queue: bool = True) -> torch.Tensor:
        queue_scores = None
        uses_queue = self.queue is not None and use_queue
        if uses_queue and self.queue_full:
            if prototypes is None:
                raise ValueError("prototypes: required once the queue is full, to score it "
                                 "(queue · prototypesᵀ)")
            weight = getattr(prototypes, "weight", prototypes).detach()
            with torch.no_grad():
                queue_scores = [(self.queue[i].to(weight.dtype) @ weight.T).to(scores[0].dtype)
                                for i in range(len(self.assign_views))]
        loss = swav_loss(scores, temperature=self.temperature, queue=queue_scores, **self.kwargs)
        if uses_queue:
            if embeddings is None:
                raise ValueError("embeddings: required to fill the queue (one (B, D) tensor per view)")
            if len(embeddings) != len(scores):
                raise ValueError(f"embeddings: expected {len(scores)} entries aligned with scores, "
                                 f"got {len(embeddings)}")
            self.push([embeddings[v] for v in self.assign_views])
        return loss
