"""Plain-PyTorch references of SwAV's Sinkhorn-Knopp and of the SwAV loss (SwAV's own code, literally).

These are the oracles of the tests and the baselines of the benchmarks (one reference per op). They
compute in the dtype of their input (float32 for half inputs): float64 inputs give the float64 oracle,
float32 inputs give SwAV's eager float32 baseline.

Sinkhorn (SwAV's ``distributed_sinkhorn`` on one process, Q is K×B as in the paper):

    Q = exp(scoresᵀ / ε)                                  (K prototypes × B samples)
    Q /= Σ Q                                              (total mass 1)
    repeat ``iterations`` times:
        Q /= Σ_b Q (per prototype);  Q /= K               (every prototype gets mass 1/K)
        Q /= Σ_k Q (per sample);     Q /= B               (every sample gets mass 1/B)
    Q *= B;  return Qᵀ                                    (B×K, every row sums to 1)

One change from SwAV: the exponent is shifted by the per-prototype maximum m_k = max_b s_bk, i.e.
Q = exp((s − m_k)/ε). This cancels exactly in exact arithmetic: the first operation that follows the
total normalisation divides every prototype's row of Q by its sum, so any per-prototype factor
exp(−m_k/ε) drops out. It removes SwAV's overflow (exp of unnormalised scores, SwAV issue #67) but not
every underflow: a sample whose scores are all more than ~700·ε (float64; ~87·ε in float32) below
every prototype's maximum gets a zero row and then 0/0 = NaN, exactly like SwAV. The stable
implementations (``sinkhorn_torch``, ``sinkhorn_triton``) have no such limit; tests compare against
this reference only where the reference is exact.

SwAV loss (SwAV's ``main_swav.py`` training step, views of B rows each, A = ``assign_views``):

    q_v  = sinkhorn(cat(queue_v, s_v))[−B:]               (targets, no gradient)
    loss = 1/|A| Σ_{v∈A} 1/(V−1) Σ_{u≠v} mean_b −Σ_k q_v,bk · log_softmax(s_u/T)_bk
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _reference_dtype(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


@torch.no_grad()
def sinkhorn_reference(scores: torch.Tensor, *, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """SwAV's Sinkhorn-Knopp on one process with the (cancelling) per-prototype max shift; (B, K) → (B, K)."""
    out = scores.detach().to(_reference_dtype(scores))
    shift = out.amax(dim=0, keepdim=True)  # m_k: cancels in the first per-prototype normalisation
    Q = torch.exp((out - shift) / epsilon).t()  # K × B, as in SwAV
    B = Q.shape[1]  # number of samples to assign
    K = Q.shape[0]  # number of prototypes
    Q /= torch.sum(Q)
    for _ in range(iterations):
        Q /= torch.sum(Q, dim=1, keepdim=True)  # per prototype: total weight 1/K
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)  # per sample: total weight 1/B
        Q /= B
    Q *= B  # every sample's column sums to 1: an assignment
    return Q.t()


def swav_loss_reference(
    scores: Sequence[torch.Tensor],
    *,
    temperature: float = 0.1,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    assign_views: Sequence[int] = (0, 1),
    queue: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """SwAV's swapped-prediction loss, computed as SwAV's training loop does (one log_softmax per pair).

    ``queue``: None, one (Nq, K) tensor of queue scores used for every assign view, or one per assign
    view (entries may be None).
    """
    n_views = len(scores)
    bs = scores[0].shape[0]
    queues = list(queue) if isinstance(queue, Sequence) else [queue] * len(assign_views)
    loss = 0
    for i, v in enumerate(assign_views):
        with torch.no_grad():
            out = scores[v].detach()
            if queues[i] is not None:
                out = torch.cat((queues[i].detach().to(out.dtype), out))
            q = sinkhorn_reference(out, epsilon=epsilon, iterations=sinkhorn_iterations)[-bs:]
        subloss = 0
        for u in range(n_views):
            if u == v:
                continue
            x = scores[u].to(_reference_dtype(scores[u])) / temperature
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (n_views - 1)
    return loss / len(assign_views)
