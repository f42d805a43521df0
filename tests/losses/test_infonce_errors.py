"""Bad input to the InfoNCE family: each raises ValueError/TypeError naming the argument."""

from __future__ import annotations

import pytest
import torch

from contrasting.losses import clip_loss, info_nce, nt_xent
from contrasting.losses import infonce as infonce_mod

q = torch.randn(4, 8)
k = torch.randn(4, 8)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: info_nce(q, torch.randn(5, 8)), ValueError, ["key", "5 rows", "query has 4"]),
        (lambda: info_nce(q, torch.randn(4, 7)), ValueError, ["key", "D=7", "D=8"]),
        (lambda: info_nce(q, k, torch.randn(6, 5)), ValueError, ["queue", "D=5"]),
        (lambda: info_nce(torch.randn(0, 8), torch.randn(0, 8)), ValueError, ["query", "empty batch"]),
        (lambda: info_nce(torch.randn(4), k), ValueError, ["query", "2-D"]),
        (lambda: info_nce(q.long(), k.long()), TypeError, ["query", "floating dtype", "int64"]),
        (lambda: info_nce(q, k.double()), TypeError, ["key", "dtype"]),
        (lambda: info_nce(q, k, temperature=0.0), ValueError, ["temperature", "> 0"]),
        (lambda: info_nce(q, k, temperature=-1.0), ValueError, ["temperature", "> 0"]),
        (lambda: info_nce(q, k, temperature=float("nan")), ValueError, ["temperature"]),
        (lambda: info_nce(q, k, temperature=torch.tensor([0.1, 0.2])), ValueError, ["temperature", "1-element"]),
        (lambda: info_nce(q, k, temperature=torch.tensor(-0.1)), ValueError, ["temperature", "> 0"]),
        (lambda: info_nce(q, k, temperature="0.1"), TypeError, ["temperature"]),
        (lambda: info_nce(q, k, backend="cuda"), ValueError, ["backend", "'auto'", "'triton'", "'torch'"]),
        (lambda: info_nce(q, k, reduction="avg"), ValueError, ["reduction", "'mean'"]),
        (lambda: info_nce(q.double(), k.double(), backend="triton"), TypeError, ["backend", "float64"]),
        (lambda: nt_xent(q, torch.randn(3, 8)), ValueError, ["z2", "rows"]),
        (lambda: clip_loss(q, torch.randn(4, 9)), ValueError, ["b", "D=9"]),
        (lambda: info_nce(q, "k"), TypeError, ["key", "torch.Tensor"]),
    ],
)
def test_bad_input_names_the_argument(call, error, words):
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_non_finite_input_is_named(bad, backend):
    key = k.clone()
    key[2, 3] = bad
    with pytest.raises(ValueError, match="key: contains NaN or Inf"):
        info_nce(q, key, backend=backend)
    z = q.clone()
    z[0, 0] = bad
    with pytest.raises(ValueError, match="z1: contains NaN or Inf"):
        nt_xent(z, k, backend=backend)


def test_devices_must_match():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device to hold a tensor on a second device")
    with pytest.raises(ValueError, match="key: is on cuda"):
        info_nce(q, k.cuda())


def test_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setattr(infonce_mod, "triton_interpreted", lambda: False)
    with pytest.raises(ValueError, match="backend: 'triton' needs CUDA tensors"):
        info_nce(q, k, backend="triton")


def test_meta_device_mismatch_is_named():
    with pytest.raises(ValueError, match="key: is on meta but query is on cpu"):
        info_nce(q, torch.empty(4, 8, device="meta"))
