"""Gathers with gradients for losses whose negatives span every rank.

Ownership diagram for W ranks with local batches of n rows (equal on every rank):

    rank 0: rows [0, n)      rank 1: rows [n, 2n)     ...     rank W−1: rows [(W−1)n, Wn)

``gather_with_grad(x)`` returns the (W·n × D) concatenation on every rank. Each rank's loss uses its
own rows as queries against the gathered rows, so the gathered row b of rank r receives gradient
from every rank's loss. Backward all-reduces (sums) the gathered gradient and hands each rank the
slice of the rows it owns, unscaled: after the data-parallel average of parameter gradients
(÷W) the result equals one process computing the mean loss over the concatenated batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def group_rank_and_size(process_group) -> tuple[int, int]:
    """(rank, world size) of this process in ``process_group`` (the default group when it is WORLD)."""
    return dist.get_rank(process_group), dist.get_world_size(process_group)


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, process_group):
        ctx.process_group = process_group
        rank, world = group_rank_and_size(process_group)
        ctx.rank, ctx.rows = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous(), group=process_group)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.process_group)
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows], None


def check_equal_rows(name: str, x: torch.Tensor, process_group) -> None:
    """Every rank must hold the same number of rows (one small all-gather of the row count)."""
    _, world = group_rank_and_size(process_group)
    mine = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    counts = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(counts, mine, group=process_group)
    sizes = [int(c) for c in counts]
    if len(set(sizes)) != 1:
        raise ValueError(f"{name}: ranks hold different batch sizes {sizes}; expected equal local batches")


def gather_with_grad(x: torch.Tensor, process_group) -> torch.Tensor:
    """Concatenate ``x`` from every rank of ``process_group``; gradients return to the owning rank (summed)."""
    return _GatherWithGrad.apply(x, process_group)
