"""swav_loss and SwAVLoss against the float64 reference of SwAV's training step: loss and gradients.

Gradients are those of 0.7·loss (an upstream gradient ≠ 1). Tolerances: the loss's terms are of size
|s|/T (spread/T here), the Sinkhorn targets carry fp32 relative errors ~|s/ε|·6e-8 ≤ 1e-5, so

    float64 (torch)     loss |Δ| ≤ 1e-10·(1 + spread/T), grads as below with 1e-10
    float32, float16    loss |Δ| ≤ 1e-4·(1 + spread/T);  grads |Δ| ≤ 1e-4·(1 + spread/T)·(max|g_ref| + w)
                        with w = 0.7/(T·B·(V−1)) the size of the terms that cancel in a gradient entry
                        (float16: inputs rounded to float16 for both sides; gradients returned in
                        float16, so 2e-3·(max|g_ref| + w) more)
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contrasting.losses.sinkhorn_reference import swav_loss_reference
from contrasting.losses.swav import SwAVLoss, swav_loss

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"
HYPO = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
UPSTREAM = 0.7


def make_views(n_views, b, k, *, seed=0, spread=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    views = []
    for _ in range(n_views):
        s = torch.randn(b, k, generator=g, dtype=torch.float64)
        views.append((s / s.abs().max().clamp(min=1e-12) * spread).to(dtype))
    return views


def loss_and_grads(fn, views, device="cpu", **kw):
    leaves = [v.detach().to(device).requires_grad_(True) for v in views]
    if "queue" in kw and kw["queue"] is not None:
        q = kw["queue"]
        kw["queue"] = q.to(device) if isinstance(q, torch.Tensor) else [x if x is None else x.to(device) for x in q]
    loss = fn(leaves, **kw)
    (loss * UPSTREAM).backward()
    grads = [torch.zeros_like(v) if v.grad is None else v.grad for v in leaves]  # views never predicted: none
    return loss.detach().cpu().double(), [g.cpu().double() for g in grads]


def check(views, backend, dtype, spread=1.0, temperature=0.1, **kw):
    views = [v.to(dtype) for v in views]  # both sides see the same (rounded) values
    queue = _cast(kw.pop("queue", None), dtype)
    want, want_g = loss_and_grads(swav_loss_reference, [v.double() for v in views], temperature=temperature,
                                  queue=_cast(queue, torch.float64), **kw)
    device = DEVICE if backend == "triton" else "cpu"
    got, got_g = loss_and_grads(swav_loss, views, device, temperature=temperature, backend=backend,
                                queue=queue, **kw)
    scale = 1 + spread / temperature
    tol = 1e-10 * scale if dtype == torch.float64 else 1e-4 * scale
    torch.testing.assert_close(got, want, atol=tol, rtol=0)
    # a gradient entry is a difference of terms up to w = upstream/(T·B·(V−1)) that may cancel exactly
    w = UPSTREAM / (temperature * views[0].shape[0] * (len(views) - 1))
    gmax = max(float(g.abs().max()) for g in want_g) + w
    gtol = tol * gmax + (2e-3 * gmax if dtype == torch.float16 else 0.0)
    for i, (a, b) in enumerate(zip(got_g, want_g, strict=True)):
        torch.testing.assert_close(a, b, atol=gtol, rtol=0, msg=lambda m, i=i: f"grad of view {i}: {m}")


def _cast(queue, dtype):
    if queue is None or isinstance(queue, torch.Tensor):
        return None if queue is None else queue.to(dtype)
    return [None if q is None else q.to(dtype) for q in queue]


# ---- against the reference --------------------------------------------------------------------------------


@st.composite
def problems(draw, max_b=12, max_k=12):
    n_views = draw(st.integers(2, 5))
    assign = draw(st.lists(st.integers(0, n_views - 1), min_size=1, max_size=3, unique=True))
    return dict(n_views=n_views, assign=tuple(assign), b=draw(st.integers(1, max_b)), k=draw(st.integers(1, max_k)),
                seed=draw(st.integers(0, 2**31 - 1)), eps=draw(st.sampled_from([0.02, 0.05, 0.5])),
                temperature=draw(st.sampled_from([0.1, 0.5, 1.0])), spread=draw(st.floats(0.0, 1.5)),
                its=draw(st.integers(1, 3)), queue=draw(st.integers(0, 6)))


def _run_problem(p, backend, dtype):
    views = make_views(p["n_views"], p["b"], p["k"], seed=p["seed"], spread=p["spread"], dtype=dtype)
    queue = None
    if p["queue"]:
        queue = make_views(1, p["queue"], p["k"], seed=p["seed"] + 1, spread=p["spread"], dtype=dtype)[0]
    check(views, backend, dtype, spread=p["spread"], temperature=p["temperature"], epsilon=p["eps"],
          sinkhorn_iterations=p["its"], assign_views=p["assign"], queue=queue)


@HYPO
@given(p=problems(), dtype=st.sampled_from([torch.float64, torch.float32, torch.float16]))
def test_torch_matches_reference(p, dtype):
    _run_problem(p, "torch", dtype)


@HYPO
@given(p=problems(max_b=9, max_k=11), dtype=st.sampled_from([torch.float32, torch.float16]))
def test_triton_matches_reference(sinkhorn_small_blocks, p, dtype):
    _run_problem(p, "triton", dtype)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_swav_multicrop_shape(backend):
    """2 large + 4 small crops, SwAV's crops_for_assign (0, 1), a queue per assign view (one None)."""
    views = make_views(6, 7, 19, seed=3, spread=1.0)
    queues = [make_views(1, 11, 19, seed=4)[0], None]
    check(views, backend, torch.float32, queue=queues)


@pytest.mark.gpu
def test_triton_bf16():
    views = make_views(8, 64, 300, seed=5, spread=1.0, dtype=torch.bfloat16)
    check(views, "triton", torch.bfloat16)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("k", [1, 6])
def test_closed_form_constant_scores(backend, k):
    """Equal scores: q = 1/K and log_softmax = −log K, so the loss is log K (0 for a single prototype)."""
    views = [torch.full((3, k), 2.5) for _ in range(4)]
    device = DEVICE if backend == "triton" else "cpu"
    loss = swav_loss([v.to(device) for v in views], assign_views=(0, 2), backend=backend)
    assert abs(float(loss) - math.log(k)) < 1e-6 * (1 + 2.5 / 0.1)  # float32: lse ≈ 25 + log K, minus 25


def test_queue_rows_shape_the_targets_only():
    """A queue changes the codes (it joins the equipartition) but never receives gradient."""
    views = [v.requires_grad_(True) for v in make_views(3, 4, 5, seed=8)]
    queue = make_views(1, 6, 5, seed=9)[0].requires_grad_(True)
    with_queue = swav_loss(views, queue=queue, backend="torch")
    without = swav_loss(views, backend="torch")
    assert abs(float(with_queue.detach()) - float(without.detach())) > 1e-6
    with_queue.backward()
    assert queue.grad is None and all(v.grad is not None for v in views)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_half_inputs_give_float32(backend):
    device = DEVICE if backend == "triton" else "cpu"
    views = [v.to(device) for v in make_views(3, 4, 5, dtype=torch.float16)]
    assert swav_loss(views, backend=backend).dtype == torch.float32


# ---- SwAVLoss and its queue ---------------------------------------------------------------------------------


def _step_inputs(step, b=4, d=3, k=5):
    g = torch.Generator().manual_seed(100 + step)
    emb = [torch.randn(b, d, generator=g, dtype=torch.float64) for _ in range(3)]
    protos = torch.randn(k, d, generator=g, dtype=torch.float64)
    return [e @ protos.T for e in emb], emb, protos


def test_module_queue_fifo_and_activation():
    crit = SwAVLoss(assign_views=(0, 1), queue_length=8, feature_dim=3, backend="torch").double()
    history = []
    for step in range(3):
        scores, emb, protos = _step_inputs(step)
        loss = crit(scores, embeddings=emb, prototypes=protos)
        if step < 2:  # not full at the start of steps 0 and 1: the queue is only filled
            want = swav_loss(scores, backend="torch")
        else:  # full: the previous two steps' embeddings, newest first, scored by today's prototypes
            queues = [torch.cat([history[1][i], history[0][i]]) @ protos.T for i in (0, 1)]
            want = swav_loss(scores, queue=queues, backend="torch")
        torch.testing.assert_close(loss, want, atol=1e-12, rtol=0)
        history.append(emb)
    assert crit.filled == 8 and crit.queue_full
    torch.testing.assert_close(crit.queue[0], torch.cat([history[2][0], history[1][0]]))
    torch.testing.assert_close(crit.queue[1], torch.cat([history[2][1], history[1][1]]))


def test_module_use_queue_false_neither_reads_nor_fills():
    crit = SwAVLoss(queue_length=4, feature_dim=3, backend="torch").double()
    scores, emb, protos = _step_inputs(0)
    crit(scores, embeddings=emb, prototypes=protos, use_queue=False)
    assert crit.filled == 0 and not crit.queue.any()
    crit(scores, embeddings=emb, prototypes=protos)
    assert crit.queue_full
    torch.testing.assert_close(crit(scores, use_queue=False), swav_loss(scores, backend="torch"))


def test_module_state_dict_round_trip():
    crit = SwAVLoss(queue_length=6, feature_dim=3, backend="torch")
    scores, emb, protos = _step_inputs(0)
    crit([s.float() for s in scores], embeddings=[e.float() for e in emb], prototypes=protos.float())
    other = SwAVLoss(queue_length=6, feature_dim=3, backend="torch")
    other.load_state_dict(crit.state_dict())
    assert other.filled == 4
    torch.testing.assert_close(other.queue, crit.queue)


def test_module_without_queue_is_swav_loss():
    scores, _, _ = _step_inputs(1)
    crit = SwAVLoss(temperature=0.2, epsilon=0.1, assign_views=(1,), backend="torch")
    want = swav_loss(scores, temperature=0.2, epsilon=0.1, assign_views=(1,), backend="torch")
    torch.testing.assert_close(crit(scores), want)


def test_module_errors():
    with pytest.raises(ValueError, match="feature_dim: expected an int >= 1"):
        SwAVLoss(queue_length=8)
    with pytest.raises(ValueError, match="queue_length: expected an int >= 0"):
        SwAVLoss(queue_length=-1)
    with pytest.raises(ValueError, match="temperature: expected a finite value > 0"):
        SwAVLoss(temperature=0.0)
    crit = SwAVLoss(queue_length=4, feature_dim=3, backend="torch").double()
    scores, emb, protos = _step_inputs(0)
    with pytest.raises(ValueError, match="embeddings: required to fill the queue"):
        crit(scores)
    with pytest.raises(ValueError, match=r"embeddings\[1\]: expected a \(B, 3\) tensor"):
        crit(scores, embeddings=[emb[0], emb[1][:, :2], None])
    crit.filled = 0
    crit(scores, embeddings=emb)
    with pytest.raises(ValueError, match="prototypes: required once the queue is full"):
        crit(scores, embeddings=emb)


# ---- bad input -----------------------------------------------------------------------------------------------


def _views(n=3, b=4, k=5):
    return [torch.randn(b, k) for _ in range(n)]


@pytest.mark.parametrize("make,kw,exc,match", [
    (lambda: torch.randn(4, 5), {}, TypeError, "scores: expected a sequence of"),
    (lambda: _views(1), {}, ValueError, "scores: expected at least 2 views"),
    (lambda: [torch.randn(4, 5), torch.randn(4, 6)], {}, ValueError, r"scores\[1\]: has K=6 prototypes"),
    (lambda: [torch.randn(4, 5), torch.randn(3, 5)], {}, ValueError, r"scores\[1\]: has B=3 rows"),
    (lambda: [torch.randn(4, 5), torch.randn(20)], {}, ValueError, r"scores\[1\]: expected a 2-D tensor"),
    (lambda: [torch.randn(4, 5), torch.randn(4, 5).double()], {}, TypeError, r"scores\[1\]: has dtype"),
    (_views, dict(assign_views=(0, 3)), ValueError, "assign_views: index 3 is out of range for 3 views"),
    (_views, dict(assign_views=(-1,)), ValueError, "assign_views: index -1 is out of range"),
    (_views, dict(assign_views=(1, 1)), ValueError, "assign_views: expected distinct"),
    (_views, dict(assign_views=()), ValueError, "assign_views: expected at least one"),
    (_views, dict(assign_views=(0.0,)), TypeError, "assign_views: expected int"),
    (_views, dict(assign_views=0), TypeError, "assign_views: expected a sequence"),
    (_views, dict(queue=torch.randn(6, 4)), ValueError, "queue: has K=4 prototypes"),
    (_views, dict(queue=[torch.randn(6, 5)]), ValueError, "queue: expected None, one"),
    (_views, dict(queue=[torch.randn(6, 5), torch.randn(2, 3)]), ValueError, r"queue\[1\]: has K=3"),
    (_views, dict(temperature=0.0), ValueError, "temperature: expected a finite value > 0"),
    (_views, dict(epsilon=-1.0), ValueError, "epsilon: expected a finite value > 0"),
    (_views, dict(sinkhorn_iterations=0), ValueError, "sinkhorn_iterations: expected an int >= 1"),
    (_views, dict(backend="jax"), ValueError, "backend: expected one of"),
])
def test_bad_input(make, kw, exc, match):
    with pytest.raises(exc, match=match):
        swav_loss(make(), **kw)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy (the Triton interpreter) warns on inf − inf
@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("view,name", [(1, r"scores\[1\]"), (2, r"scores\[2\]")])
def test_nonfinite_scores_named(backend, view, name):
    """NaN in an assign view (caught by its Sinkhorn) or in a predicted-only view (caught on the loss)."""
    device = DEVICE if backend == "triton" else "cpu"
    views = [v.to(device) for v in _views()]
    views[view][1, 2] = float("nan")
    with pytest.raises(ValueError, match=f"{name}: contains NaN or Inf"):
        swav_loss(views, backend=backend)


def test_nonfinite_queue_named():
    queue = torch.randn(6, 5)
    queue[0, 0] = float("inf")
    with pytest.raises(ValueError, match="queue: contains NaN or Inf"):
        swav_loss(_views(), queue=queue, backend="torch")
    with pytest.raises(ValueError, match=r"queue\[1\]: contains NaN or Inf"):
        swav_loss(_views(), queue=[None, queue], backend="torch")
