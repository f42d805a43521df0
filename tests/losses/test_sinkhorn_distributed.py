"""2 gloo processes vs one process on the concatenated batch: sinkhorn and swav_loss, both backends.

sinkhorn: rank r holds samples [offset_r, offset_r + B_r) (unequal B_r here) and gets back exactly those
rows of the single-process Q. swav_loss: every view is split row-wise over the ranks (equal local B);
under data-parallel averaging the mean of the ranks' losses equals the single-process loss and each
rank's gradient of its own rows ÷ W equals the single-process gradient of those rows. With a queue each
rank prepends its own queue rows, as in SwAV; the single process sees all ranks' queue rows.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from contrasting.losses.sinkhorn import sinkhorn
from contrasting.losses.swav import swav_loss
from tests.distributed_harness import run_on_ranks

WORLD = 2
SPLIT = (5, 8)  # unequal local batches for sinkhorn
N_LOCAL, K, VIEWS, QUEUE_LOCAL = 4, 7, 4, 3
BACKENDS = ("torch", "triton")


def _dtype(backend):
    return torch.float64 if backend == "torch" else torch.float32


def _scores(b, k, seed, dtype, spread=1.5):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, k, generator=g, dtype=torch.float64) * 2 - 1).mul(spread).to(dtype)


def _swav_inputs(dtype):
    views = [_scores(N_LOCAL * WORLD, K, 20 + v, dtype) for v in range(VIEWS)]
    queues = [_scores(QUEUE_LOCAL * WORLD, K, 40 + i, dtype) for i in range(2)]
    return views, queues


def _loss_and_grads(views, queue, backend, process_group):
    leaves = [v.detach().clone().requires_grad_(True) for v in views]
    loss = swav_loss(leaves, epsilon=0.05, queue=queue, backend=backend, process_group=process_group)
    loss.backward()
    return loss.detach(), [v.grad for v in leaves]


def _rank_fn(rank, world, backends):
    return {backend: _rank_results(rank, world, backend) for backend in backends}


def _rank_results(rank, world, backend):
    dtype = _dtype(backend)
    group = dist.group.WORLD
    out = {}
    full = _scores(sum(SPLIT), K, 7, dtype)
    start = sum(SPLIT[:rank])
    out["sinkhorn"] = sinkhorn(full[start : start + SPLIT[rank]], epsilon=0.05, process_group=group,
                               backend=backend)
    # the log-domain path of the torch backend (and the triton one) on scores that force it
    big = _scores(sum(SPLIT), K, 8, dtype, spread=1e3)
    out["sinkhorn_extreme"] = sinkhorn(big[start : start + SPLIT[rank]], epsilon=0.05, process_group=group,
                                       backend=backend)
    views, queues = _swav_inputs(dtype)
    rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
    qrows = slice(rank * QUEUE_LOCAL, (rank + 1) * QUEUE_LOCAL)
    for name, queue in (("swav", None), ("swav_queue", [q[qrows] for q in queues])):
        loss, grads = _loss_and_grads([v[rows] for v in views], queue, backend, group)
        dist.all_reduce(loss)  # data-parallel averaging of the objective
        out[name] = (loss / world, [g / world for g in grads])
    return out


@pytest.fixture(scope="module")
def rank_results():
    """Both backends in one pair of processes (starting them costs more than the tests)."""
    return run_on_ranks(_rank_fn, world_size=WORLD, args=(BACKENDS,))


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_ranks_equal_one_process(rank_results, backend):
    results = [r[backend] for r in rank_results]
    dtype = _dtype(backend)
    tol = dict(atol=1e-12, rtol=1e-10) if dtype == torch.float64 else dict(atol=2e-6, rtol=1e-5)

    for key, seed, spread in (("sinkhorn", 7, 1.5), ("sinkhorn_extreme", 8, 1e3)):
        want = sinkhorn(_scores(sum(SPLIT), K, seed, dtype, spread=spread), epsilon=0.05, backend=backend)
        got = torch.cat([r[key] for r in results])
        torch.testing.assert_close(got, want, **(tol if spread < 10 else dict(atol=1e-5, rtol=1e-4)))

    views, queues = _swav_inputs(dtype)
    for key, queue in (("swav", None), ("swav_queue", queues)):
        want_loss, want_grads = _loss_and_grads(views, queue, backend, None)
        for rank, r in enumerate(results):
            loss, grads = r[key]
            torch.testing.assert_close(loss, want_loss, **tol)
            rows = slice(rank * N_LOCAL, (rank + 1) * N_LOCAL)
            for v, (g, w) in enumerate(zip(grads, want_grads, strict=True)):
                torch.testing.assert_close(g, w[rows], **tol, msg=lambda m, v=v, key=key: f"{key} view {v}: {m}")
