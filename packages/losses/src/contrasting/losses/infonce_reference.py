"""Plain-PyTorch references of the InfoNCE family, with materialised logits.

These are the oracles of the tests and the baselines of the benchmarks (one reference per op).
They follow the papers literally and accept float64, so they can be trusted as ground truth:

    s_ij   = q_i · c_j / τ                    (q, c L2-normalised when ``normalize``)
    loss_i = logsumexp_j s_ij − s_i,pos(i)

* ``info_nce_reference``: candidates of query i are the keys (all of them with in-batch negatives,
  else only k_i) followed by the queue; the positive is k_i (MoCo, one CLIP direction).
* ``nt_xent_reference``: SimCLR over the 2N views z = [z1; z2]; candidates of view i are the other
  2N − 1 views, the positive is the other view of the same sample.
* ``clip_loss_reference``: ½ (CE(logits, arange) + CE(logitsᵀ, arange)) with logits = a·bᵀ/τ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._checks import reduce_loss


def info_nce_reference(
    query: torch.Tensor,
    key: torch.Tensor,
    queue: torch.Tensor | None = None,
    *,
    temperature: float | torch.Tensor = 0.07,
    in_batch_negatives: bool = True,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """InfoNCE with materialised logits; label of row i is its own key (column 0 or column i)."""
    if normalize:
        query, key = F.normalize(query, dim=1), F.normalize(key, dim=1)
        queue = F.normalize(queue, dim=1) if queue is not None else None
    if queue is not None:
        queue = queue.detach()
    n = query.shape[0]
    if in_batch_negatives:
        logits = query @ key.T
        labels = torch.arange(n, device=query.device)
    else:
        logits = (query * key).sum(dim=1, keepdim=True)
        labels = torch.zeros(n, dtype=torch.long, device=query.device)
    if queue is not None:
        logits = torch.cat([logits, query @ queue.T], dim=1)
    logits = logits / temperature
    return F.cross_entropy(logits, labels, reduction=reduction)


def nt_xent_reference(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.5,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """NT-Xent with the (2N × 2N) logits; the diagonal is masked with −inf. Rows ordered [z1; z2]."""
    z = torch.cat([z1, z2], dim=0)
    if normalize:
        z = F.normalize(z, dim=1)
    n2 = z.shape[0]
    logits = (z @ z.T) / temperature
    eye = torch.eye(n2, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    labels = (torch.arange(n2, device=z.device) + n2 // 2) % n2
    return F.cross_entropy(logits, labels, reduction=reduction)


def clip_loss_reference(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.07,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Symmetric CLIP loss; with ``reduction="none"`` returns per-pair ½(row_i + col_i)."""
    if normalize:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = (a @ b.T) / temperature
    labels = torch.arange(a.shape[0], device=a.device)
    per_pair = 0.5 * (
        F.cross_entropy(logits, labels, reduction="none") + F.cross_entropy(logits.T, labels, reduction="none")
    )
    return reduce_loss(per_pair, reduction)
