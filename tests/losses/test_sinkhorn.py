"""sinkhorn against the float64 reference of SwAV's algorithm, marginals, extreme scales, bad input.

Both backends run everywhere: "torch" directly, "triton" under TRITON_INTERPRET=1 on CPU (set by
conftest) or on CUDA; the interpreter computes bf16 wrongly, so bf16 runs only on a GPU. Tolerances
(Q's entries lie in [0, 1] and rows sum to 1): an fp32 implementation computes a = s/ε with a relative
error of ~6e-8, so an entry is off by ~6e-8·|a| relatively; the inputs here keep |a| ≤ 200:

    float64 (torch)  |ΔQ| ≤ 1e-10        float32, float16 inputs  |ΔQ| ≤ 3e-5 + 1e-4·Q
    bfloat16 (GPU)   as float32, against the reference on the same bf16-rounded scores

Small shapes exercise several blocks: the ``sinkhorn_small_blocks`` fixture (conftest) shrinks every Triton tile
to 4×8 and the column pass to a few programs, so rows, columns and row splits all have ragged ends.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contrasting.losses import sinkhorn_torch, sinkhorn_triton
from contrasting.losses.sinkhorn import sinkhorn
from contrasting.losses.sinkhorn_reference import sinkhorn_reference

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"
HYPO = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ODD_SHAPES = [(1, 1), (1, 7), (7, 1), (3, 29), (29, 3), (17, 17)]


def make_scores(b, k, *, seed=0, spread=1.0, dtype=torch.float64, device="cpu"):
    """Scores in [−spread, spread] (max |s| = spread), rounded to ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(b, k, generator=g, dtype=torch.float64)
    s = s / s.abs().max().clamp(min=1e-12) * spread
    return s.to(device=device, dtype=dtype)


def run(scores, backend, **kw):
    if backend == "triton":
        scores = scores.to(DEVICE)
    return sinkhorn(scores, backend=backend, **kw).cpu().double()


def expected(scores, **kw):
    return sinkhorn_reference(scores.cpu().double(), **kw)


def close(actual, want, dtype):
    if dtype == torch.float64:
        torch.testing.assert_close(actual, want, atol=1e-10, rtol=1e-8)
    else:
        torch.testing.assert_close(actual, want, atol=3e-5, rtol=1e-4)


def check_rows(q, atol=1e-5):
    torch.testing.assert_close(q.sum(dim=1), torch.ones(q.shape[0], dtype=q.dtype), atol=atol, rtol=0)


# ---- the reference itself -------------------------------------------------------------------------------


def test_reference_shift_cancels():
    """The per-prototype max shift of the reference changes nothing where SwAV's literal code is finite."""
    s = make_scores(9, 13, spread=2.0)
    Q = torch.exp(s / 0.1).t()
    Q /= Q.sum()
    for _ in range(3):
        Q /= Q.sum(dim=1, keepdim=True)
        Q /= 13
        Q /= Q.sum(dim=0, keepdim=True)
        Q /= 9
    torch.testing.assert_close(sinkhorn_reference(s, epsilon=0.1), (Q * 9).t(), atol=1e-14, rtol=1e-12)


# ---- against the reference --------------------------------------------------------------------------------


@HYPO
@given(b=st.integers(1, 40), k=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
       eps=st.sampled_from([0.01, 0.05, 0.2, 1.0]), its=st.integers(1, 4), spread_eps=st.floats(0.0, 100.0),
       dtype=st.sampled_from([torch.float64, torch.float32, torch.float16]))
def test_torch_matches_reference(b, k, seed, eps, its, spread_eps, dtype):
    s = make_scores(b, k, seed=seed, spread=spread_eps * eps, dtype=dtype)
    close(run(s, "torch", epsilon=eps, iterations=its), expected(s, epsilon=eps, iterations=its), dtype)


@HYPO
@given(b=st.integers(1, 40), k=st.integers(1, 40), seed=st.integers(0, 2**31 - 1),
       eps=st.sampled_from([0.01, 0.05, 1.0]), its=st.integers(1, 4), spread_eps=st.floats(0.0, 100.0),
       dtype=st.sampled_from([torch.float64, torch.float32]))
def test_torch_log_domain_matches_reference(b, k, seed, eps, its, spread_eps, dtype, monkeypatch):
    """The log-domain path (the fallback of the scaling path) on its own, with small row blocks."""
    monkeypatch.setattr(sinkhorn_torch, "TILE_ELEMENTS", 64)
    s = make_scores(b, k, seed=seed, spread=spread_eps * eps, dtype=dtype)
    q, f, g = sinkhorn_torch.sinkhorn_log(s, eps, its)
    assert f.shape == (b,) and g.shape == (k,)
    close(q.double(), expected(s, epsilon=eps, iterations=its), dtype)


@HYPO
@given(b=st.integers(1, 37), k=st.integers(1, 37), seed=st.integers(0, 2**31 - 1),
       eps=st.sampled_from([0.01, 0.05, 1.0]), its=st.integers(1, 3), spread_eps=st.floats(0.0, 100.0),
       dtype=st.sampled_from([torch.float32, torch.float16]))
def test_triton_matches_reference(sinkhorn_small_blocks, b, k, seed, eps, its, spread_eps, dtype):
    s = make_scores(b, k, seed=seed, spread=spread_eps * eps, dtype=dtype)
    close(run(s, "triton", epsilon=eps, iterations=its), expected(s, epsilon=eps, iterations=its), dtype)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("b,k", ODD_SHAPES)
def test_odd_shapes(backend, b, k, sinkhorn_small_blocks):
    s = make_scores(b, k, seed=b * 100 + k, spread=0.5, dtype=torch.float32)
    q = run(s, backend)
    assert q.shape == (b, k)
    close(q, expected(s), torch.float32)
    check_rows(q)


def test_triton_default_blocks():
    """The real tile sizes (larger than these shapes): masks at every edge."""
    for b, k in [(1, 1), (5, 600), (70, 33)]:
        s = make_scores(b, k, seed=k, spread=0.3, dtype=torch.float32)
        close(run(s, "triton"), expected(s), torch.float32)


@pytest.mark.gpu
@pytest.mark.parametrize("b,k", [(37, 29), (4096, 3000)])
def test_triton_bf16(b, k):
    s = make_scores(b, k, seed=3, spread=1.0, dtype=torch.bfloat16, device="cuda")
    close(run(s, "triton"), expected(s), torch.float32)


def test_closed_form_constant_scores():
    """Equal scores: every sample spreads evenly over the K prototypes."""
    for backend in ("torch", "triton"):
        q = run(torch.full((6, 5), 3.7), backend)
        torch.testing.assert_close(q, torch.full((6, 5), 0.2, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("b,k", [(5, 40), (40, 5), (23, 23)])
def test_marginals_converge(b, k):
    """Rows sum to 1 after any number of iterations; with many, every prototype gets mass B/K."""
    s = make_scores(b, k, seed=1, spread=0.15, dtype=torch.float64)  # converges to 1e-10 in 10 iterations
    for backend, dtype in (("torch", torch.float64), ("torch", torch.float32), ("triton", torch.float32)):
        q = run(s.to(dtype), backend, epsilon=0.05, iterations=12)
        check_rows(q)
        cols = torch.full((k,), b / k, dtype=torch.float64)
        torch.testing.assert_close(q.sum(dim=0), cols, atol=1e-3 * b / k, rtol=0)


def test_many_iterations_potentials_stay_bounded():
    """B ≪ K: without the log(B/K) term the potentials drift by log(K/B) per iteration (linear scalings
    underflow after ~40 iterations in float32); with it they converge."""
    s = make_scores(5, 40, seed=1, spread=0.15, dtype=torch.float32)
    q = sinkhorn_torch.sinkhorn_scaling(s, 0.05, 300)
    assert q is not None
    check_rows(q.double())
    _, f, g = sinkhorn_torch.sinkhorn_log(s, 0.05, 300)
    assert f.abs().max() < 10 and g.abs().max() < 10
    q = run(s, "triton", iterations=30)
    check_rows(q)
    torch.testing.assert_close(q.sum(dim=0), torch.full((40,), 5 / 40, dtype=torch.float64), atol=1e-5, rtol=0)


# ---- extreme scales ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_large_offsets_are_exact(backend):
    """±1e3 offsets per prototype plus a global 1e3: SwAV's exp overflows; Q is that of the offset-free scores."""
    base = make_scores(11, 9, seed=5, spread=1.0)
    offsets = torch.where(torch.arange(9) % 2 == 0, 1e3, -1e3).double()
    s = base + offsets + 1e3
    want = expected(base)
    torch.testing.assert_close(run(s, "torch"), want, atol=1e-9, rtol=1e-7)  # float64
    # float32 cannot hold s to better than ulp(2e3)/ε ≈ 2.4e-3 in the exponent: Q is that close, relatively
    q32 = run(s.float(), backend)
    torch.testing.assert_close(q32, expected(s.float()), atol=1e-2, rtol=1e-2)
    check_rows(q32)


@pytest.mark.parametrize("eps", [0.05, 0.01])
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_random_scale_1e3_no_nan(backend, eps):
    """Scores ~ ±1e3 and small ε: SwAV's algorithm (and the reference) give NaN; these give a valid Q."""
    s = make_scores(13, 10, seed=11, spread=1e3)
    assert torch.isnan(sinkhorn_reference(s, epsilon=eps)).any()  # what SwAV does
    assert sinkhorn_torch.sinkhorn_scaling(s.float(), eps, 3) is None  # the scaling check rejects it
    truth, _, _ = sinkhorn_torch.sinkhorn_log(s, eps, 3)  # float64 log domain
    q = run(s.float(), backend, epsilon=eps)
    assert torch.isfinite(q).all() and (q >= 0).all() and (q <= 1 + 1e-6).all()
    check_rows(q)
    torch.testing.assert_close(q, truth, atol=5e-2, rtol=0)  # exponents up to 2e5: fp32 ulp ≈ 0.016


def test_scaling_and_log_paths_agree():
    s = make_scores(64, 48, seed=2, spread=2.0, dtype=torch.float32)
    q_scaling = sinkhorn_torch.sinkhorn_scaling(s, 0.05, 3)
    assert q_scaling is not None
    q_log, _, _ = sinkhorn_torch.sinkhorn_log(s, 0.05, 3)
    torch.testing.assert_close(q_scaling, q_log, atol=3e-6, rtol=1e-4)


def test_keep_last_rows():
    """The queue path: Q of the last rows only, as SwAV's sinkhorn(cat(queue, scores))[−B:]."""
    s = make_scores(30, 12, seed=9, spread=0.4, dtype=torch.float32)
    want = expected(s)[-7:]
    q, ok = sinkhorn_torch.sinkhorn_torch(s, 0.05, 3, None, 7)
    assert bool(ok)
    close(q.double(), want, torch.float32)
    q_log, _, _ = sinkhorn_torch.sinkhorn_log(s, 0.05, 3, None, 7)
    close(q_log.double(), want, torch.float32)
    q_tri, ok = sinkhorn_triton.sinkhorn_triton(s.to(DEVICE), 0.05, 3, None, 7)
    assert bool(ok)
    close(q_tri.cpu().double(), want, torch.float32)


def test_isolated_neg_inf_is_a_zero():
    s = make_scores(6, 5, seed=4, spread=0.5, dtype=torch.float32)
    s[2, 3] = float("-inf")
    for backend in ("torch", "triton"):
        q = run(s, backend)
        assert q[2, 3] == 0 and torch.isfinite(q).all()
        check_rows(q)


# ---- no autograd, dtypes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_no_autograd_and_dtype(backend):
    s = make_scores(5, 4, dtype=torch.float16).to(DEVICE if backend == "triton" else "cpu").requires_grad_(True)
    q = sinkhorn(s, backend=backend)
    assert not q.requires_grad and q.grad_fn is None
    assert q.dtype == torch.float32
    assert sinkhorn(make_scores(5, 4), backend="torch").dtype == torch.float64


# ---- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad,exc,match", [
    (torch.zeros(5), ValueError, "scores: expected a 2-D tensor"),
    (torch.zeros(2, 3, 4), ValueError, "scores: expected a 2-D tensor"),
    (torch.zeros(0, 3), ValueError, "scores: expected at least one sample"),
    (torch.zeros(3, 0), ValueError, "scores: expected at least one sample"),
    (torch.zeros(3, 3, dtype=torch.int64), TypeError, "scores: expected a floating dtype"),
    ([[1.0, 2.0]], TypeError, "scores: expected a torch.Tensor"),
])
def test_bad_scores(bad, exc, match):
    with pytest.raises(exc, match=match):
        sinkhorn(bad)


@pytest.mark.parametrize("kw,exc,match", [
    (dict(epsilon=0.0), ValueError, "epsilon: expected a finite value > 0"),
    (dict(epsilon=-0.1), ValueError, "epsilon: expected a finite value > 0"),
    (dict(epsilon=float("nan")), ValueError, "epsilon: expected a finite value > 0"),
    (dict(epsilon=float("inf")), ValueError, "epsilon: expected a finite value > 0"),
    (dict(epsilon="0.05"), TypeError, "epsilon: expected a float"),
    (dict(iterations=0), ValueError, "iterations: expected an int >= 1"),
    (dict(iterations=-2), ValueError, "iterations: expected an int >= 1"),
    (dict(iterations=1.5), TypeError, "iterations: expected an int"),
    (dict(iterations=True), TypeError, "iterations: expected an int"),
    (dict(backend="cuda"), ValueError, "backend: expected one of"),
])
def test_bad_arguments(kw, exc, match):
    with pytest.raises(exc, match=match):
        sinkhorn(torch.randn(4, 3), **kw)


def test_triton_rejects_float64():
    with pytest.raises(TypeError, match="backend: 'triton' supports"):
        sinkhorn(torch.randn(4, 3, dtype=torch.float64), backend="triton")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy (the Triton interpreter) warns on inf − inf
@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("where,value", [((1, 2), float("nan")), ((0, 0), float("inf")),
                                         ((2, slice(None)), float("-inf")), ((slice(None), 1), float("-inf"))])
def test_nonfinite_scores(backend, where, value):
    s = make_scores(4, 3, dtype=torch.float32).to(DEVICE if backend == "triton" else "cpu")
    s[where] = value
    with pytest.raises(ValueError, match="scores: contains NaN or Inf"):
        sinkhorn(s, backend=backend)
    q = sinkhorn(s, backend=backend, check_finite=False)  # opting out returns whatever came out
    assert q.shape == (4, 3)
