"""info_nce / nt_xent / clip_loss against their float64 references: loss and every gradient.

Both backends run everywhere: "torch" directly, "triton" under TRITON_INTERPRET=1 on CPU (set by
conftest) or on CUDA. Tolerances, relative to the logit scale 1/τ (the size of the loss's terms) and,
for gradients, to the largest per-row upstream weight w: a row's gradient is the
difference of two terms of size ~w/τ that cancel exactly when it has a single candidate. With
``normalize`` the bound is also multiplied by 1/min‖x_i‖, the amplification of F.normalize's backward;
for τ's own gradient (dτ = −dσ/τ², a sum over all rows) the factor (1 + 1/τ) is squared and w is Σ_i w_i:

    float32  loss |Δ| ≤ 2e-5·(1 + 1/τ)          grads |Δ| ≤ 2e-5·(1 + 1/τ)·(max|g_ref| + w) + 1e-7
    float16  loss |Δ| ≤ 2e-3·(1 + 1/τ)          grads |Δ| ≤ 5e-3·(1 + 1/τ)·(max|g_ref| + w) + 1e-6
    bfloat16 (GPU only; the interpreter computes bf16 wrongly): 8× the float16 bounds.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contrasting.losses import info_nce, infonce_triton, nt_xent
from tests.losses.infonce_cases import BY_NAME, ENTRY_POINTS, make_inputs, run

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"
BACKENDS = ("torch", "triton")
TOL = {torch.float32: (2e-5, 2e-5, 1e-7), torch.float16: (2e-3, 5e-3, 1e-6), torch.bfloat16: (1.6e-2, 4e-2, 8e-6)}
HYPO = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def small_blocks(monkeypatch):
    """16-wide tiles so that small shapes still span several row, column and D blocks (ragged edges)."""
    def tiny(dtype, d, kernel):
        return infonce_triton.KernelConfig(16, 16, 16, 1, 1)

    monkeypatch.setattr(infonce_triton, "select_config", tiny)


def check_against_reference(entry, n, d, k, dtype, seed, temperature, reduction, backend, learn_temperature,
                            spread=1.0, normalize=True):
    a, b, queue, w = make_inputs(entry, n, d, k, dtype, seed, spread)
    dev = lambda t: None if t is None else t.to(DEVICE)
    got, got_grads = run(entry.fused, entry, dev(a), dev(b), dev(queue), w, temperature=temperature,
                         reduction=reduction, learn_temperature=learn_temperature, backend=backend,
                         normalize=normalize)
    f64 = lambda t: None if t is None else t.double()
    want, want_grads = run(entry.reference, entry, f64(a), f64(b), f64(queue), w, temperature=temperature,
                           reduction=reduction, learn_temperature=learn_temperature, normalize=normalize)
    loss_tol, grad_tol, grad_floor = TOL[dtype]
    logit_scale = 1.0 + 1.0 / temperature
    where = f"{entry.name} n={n} d={d} k={k} {dtype} τ={temperature} {reduction} backend={backend}"
    scale = want.abs().max().item() if reduction != "mean" else 1.0
    assert torch.allclose(got.cpu(), want, rtol=0, atol=loss_tol * logit_scale * max(1.0, scale)), (
        f"loss mismatch {where}: got {got} want {want}")
    names = ("input 0", "input 1", "temperature")
    w_row = w.max().item()  # gradients are of Σ_i w_i·loss_i whatever the reduction
    amp = 1.0 / min(a.double().norm(dim=1).min().item(), b.double().norm(dim=1).min().item()) if normalize else 1.0
    grad_floor *= max(1.0, amp)
    grad_tol *= max(1.0, amp)
    for name, g, r in zip(names[: len(want_grads)], got_grads, want_grads, strict=True):
        # dτ = −dσ/τ²: its terms are 1/τ larger than those of the inputs' gradients
        # and sum over every row: their size is Σ_i w_i, not max_i w_i
        terms, weight = (logit_scale**2, w.sum().item()) if name == "temperature" else (logit_scale, w_row)
        bound = grad_tol * terms * (r.abs().max().item() + weight) + grad_floor
        err = (g.cpu() - r).abs()
        assert err.max().item() <= bound, (
            f"grad of {name} mismatch {where}: max |Δ| {err.max().item():.3g} at {divmod(int(err.argmax()), max(d, 1))}"
            f" > {bound:.3g}")


sizes = st.tuples(st.integers(1, 37), st.integers(1, 40), st.integers(1, 29))
temperatures = st.sampled_from([0.01, 0.05, 0.07, 0.2, 0.5, 1.0])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
@HYPO
@given(size=sizes, seed=st.integers(0, 2**31 - 1), temperature=temperatures,
       reduction=st.sampled_from(["mean", "sum", "none"]), learn=st.booleans())
def test_fp32_matches_reference(entry, backend, small_blocks, size, seed, temperature, reduction, learn):
    n, d, k = size
    check_against_reference(entry, n, d, k, torch.float32, seed, temperature, reduction, backend, learn)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=sizes, seed=st.integers(0, 2**31 - 1), temperature=temperatures, learn=st.booleans())
def test_fp16_triton_matches_reference(entry, small_blocks, size, seed, temperature, learn):
    n, d, k = size
    check_against_reference(entry, n, d, k, torch.float16, seed, temperature, "mean", "triton", learn)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
def test_default_tiles_ragged(entry):
    """Production tile sizes with sizes that are not multiples of them, D above the largest D tile."""
    check_against_reference(entry, 70, 130, 67, torch.float32, 3, 0.07, "mean", "triton", True)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("n", [1, 2])
def test_degenerate_sizes(entry, n, small_blocks):
    for backend in BACKENDS:
        check_against_reference(entry, n, 1, 1, torch.float32, n, 0.1, "mean", backend, True)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
def test_unnormalized_large_logits(entry, small_blocks):
    """normalize=False with large norms: logits in the hundreds must not overflow (max-shifted LSE)."""
    for backend in BACKENDS:
        check_against_reference(entry, 19, 9, 5, torch.float32, 11, 1.0, "mean", backend, False,
                                spread=6.0, normalize=False)


@pytest.mark.gpu
@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_triton_on_gpu(entry, dtype):
    for n, d, k in [(1, 1, 1), (129, 67, 300), (1000, 256, 4097), (300, 1000, 77)]:
        check_against_reference(entry, n, d, k, dtype, n + d, 0.07, "mean", "triton", True)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=lambda e: e.name)
def test_float64_gradcheck(entry):
    a, b, queue, _ = make_inputs(entry, 5, 4, 3, torch.float64, 0)
    a.requires_grad_(True)
    b.requires_grad_(True)
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    extra = (queue,) if entry.has_queue else ()
    fn = lambda x, y, t: entry.fused(x, y, *extra, temperature=t, backend="torch", **dict(entry.kwargs))
    assert torch.autograd.gradcheck(fn, (a, b, tau))


def test_nt_xent_identical_views_closed_form():
    """All 2N views equal: every logit is 1/τ, so each row's loss is log(2N − 1)."""
    z = torch.ones(6, 4)
    for backend in BACKENDS:
        loss = nt_xent(z, z.clone(), temperature=0.3, backend=backend)
        assert math.isclose(loss.item(), math.log(11), rel_tol=1e-6)


def test_info_nce_identical_keys_closed_form():
    """Every candidate equal: loss is log(N + K) per row."""
    q = torch.ones(5, 3)
    for backend in BACKENDS:
        loss = info_nce(q, q.clone(), torch.ones(7, 3), temperature=0.1, backend=backend)
        assert math.isclose(loss.item(), math.log(12), rel_tol=1e-6)


def test_non_contiguous_inputs_match_contiguous():
    entry = BY_NAME["clip_loss"]
    a, b, _, w = make_inputs(entry, 9, 7, 1, torch.float32, 5)
    a_t, b_t = a.T.contiguous().T, b.T.contiguous().T  # column-major views
    assert not a_t.is_contiguous()
    for backend in BACKENDS:
        want, gw = run(entry.fused, entry, a, b, None, w, temperature=0.1, reduction="mean",
                       learn_temperature=False, backend=backend)
        got, gg = run(entry.fused, entry, a_t, b_t, None, w, temperature=0.1, reduction="mean",
                      learn_temperature=False, backend=backend)
        assert torch.allclose(got, want, atol=1e-6)
        for x, y in zip(gg, gw, strict=True):
            assert torch.allclose(x, y, atol=1e-6)


def test_queue_receives_no_gradient():
    q = torch.randn(4, 3, requires_grad=True)
    k = torch.randn(4, 3, requires_grad=True)
    queue = torch.randn(6, 3, requires_grad=True)
    for backend in BACKENDS:
        info_nce(q, k, queue, in_batch_negatives=False, backend=backend).backward()
        assert queue.grad is None
        assert q.grad is not None and k.grad is not None


def test_half_inputs_give_float32_loss_and_input_dtype_grads():
    q = torch.randn(8, 16, dtype=torch.float16, requires_grad=True)
    k = torch.randn(8, 16, dtype=torch.float16, requires_grad=True)
    loss = info_nce(q, k, backend="triton")
    loss.backward()
    assert loss.dtype == torch.float32 and q.grad.dtype == torch.float16


def test_torch_backend_memory_is_blockwise(monkeypatch):
    """The torch backend never holds more than one tile: with a 64-element tile budget it still matches."""
    from contrasting.losses import infonce_torch

    monkeypatch.setattr(infonce_torch, "TILE_ELEMENTS", 64)
    check_against_reference(BY_NAME["clip_loss"], 23, 5, 1, torch.float32, 1, 0.1, "mean", "torch", True)
    check_against_reference(BY_NAME["nt_xent"], 23, 5, 1, torch.float32, 2, 0.1, "none", "torch", True)
