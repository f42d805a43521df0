"""2 gloo processes vs one process on the concatenated batch, for every InfoNCE entry point and backend.

Each rank holds rows [r·n, (r+1)·n) of every input and computes its mean loss and gradients. The
data-parallel convention averages the objective over ranks, (1/W)·Σ_r loss_r: under it the averaged
loss, each rank's gradient of its own rows ÷ W, and the averaged gradient of the shared temperature
must equal those of one process computing the mean loss over all W·n rows.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from tests.distributed_harness import run_on_ranks
from tests.losses.infonce_cases import BY_NAME, ENTRY_POINTS, make_inputs

N_LOCAL, D, K = 5, 7, 6
BACKENDS = ("torch", "triton")


def _loss_and_grads(entry, a, b, queue, tau, backend, process_group):
    a = a.detach().clone().requires_grad_(True)
    b = b.detach().clone().requires_grad_(True)
    tau = tau.detach().clone().requires_grad_(True)
    args = (a, b, queue) if entry.has_queue else (a, b)
    loss = entry.fused(*args, temperature=tau, backend=backend, process_group=process_group,
                       **dict(entry.kwargs))
    loss.backward()
    return loss.detach(), a.grad, b.grad, tau.grad


def _rank_fn(rank, world, backend):
    out = {}
    for entry in ENTRY_POINTS:
        a, b, queue, _ = make_inputs(entry, N_LOCAL * world, D, K, torch.float32, seed=7)
        rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
        loss, ga, gb, gt = _loss_and_grads(entry, a[rows], b[rows], queue, torch.tensor(0.2), backend,
                                           dist.group.WORLD)
        for t in (loss, gt):  # data-parallel averaging of the replicated values
            dist.all_reduce(t)
            t /= world
        # rows are not replicated: the averaged objective (1/W)·Σ_r loss_r scales their gradient by 1/W
        out[entry.name] = (loss, ga / world, gb / world, gt)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_ranks_equal_one_process(backend):
    world = 2
    per_rank = run_on_ranks(_rank_fn, world_size=world, args=(backend,))
    for entry in ENTRY_POINTS:
        a, b, queue, _ = make_inputs(BY_NAME[entry.name], N_LOCAL * world, D, K, torch.float32, seed=7)
        loss, ga, gb, gt = _loss_and_grads(entry, a, b, queue, torch.tensor(0.2), backend, None)
        for rank, result in enumerate(per_rank):
            r_loss, r_ga, r_gb, r_gt = result[entry.name]
            rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
            where = f"{entry.name} backend={backend} rank={rank}"
            torch.testing.assert_close(r_loss, loss, atol=1e-6, rtol=1e-5, msg=f"loss {where}")
            torch.testing.assert_close(r_ga, ga[rows], atol=1e-6, rtol=1e-5, msg=f"grad a {where}")
            torch.testing.assert_close(r_gb, gb[rows], atol=1e-6, rtol=1e-5, msg=f"grad b {where}")
            torch.testing.assert_close(r_gt, gt, atol=1e-5, rtol=1e-5, msg=f"grad temperature {where}")
