"""BYOL: the τ schedule, the loss against a float64 reference, the target update, and training through DeepSpeed
(decreasing loss, checkpoint, resume to the same weights as an uninterrupted run)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from contrasting.encoders.methods.byol import target_momentum
from contrasting.encoders.training.trainer import pretrain

from .helpers import read_log, tiny_batch, tiny_config, tiny_method, tiny_source


@settings(max_examples=60, deadline=None)
@given(base=st.floats(0.0, 1.0), step=st.integers(-5, 10_000), total=st.integers(1, 5_000))
def test_target_momentum_follows_the_cosine_schedule(base, step, total):
    k = min(max(step, 0), total)
    expected = 1 - (1 - base) * (math.cos(math.pi * k / total) + 1) / 2
    tau = target_momentum(base, step, total)
    assert math.isclose(tau, expected, rel_tol=0, abs_tol=1e-12) and base - 1e-12 <= tau <= 1 + 1e-12
    assert target_momentum(base, step, None) == base


def test_schedule_end_points():
    assert target_momentum(0.996, 0, 100) == 0.996
    assert math.isclose(target_momentum(0.996, 50, 100), 0.998)
    assert target_momentum(0.996, 100, 100) == 1.0


def _reference_loss(method, views) -> float:
    """4 − 2·cos(p(v1), z'(v2)) − 2·cos(p(v2), z'(v1)) from the module's own layers, in float64."""
    with torch.no_grad():
        p = [method.predictor(method.projector(method.backbone.embed(v))).double() for v in views]
        z = [method.target["projector"](method.target["backbone"].embed(v)).double() for v in views]

    def cos(a, b):
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))

    return float((4 - 2 * cos(p[0], z[1]) - 2 * cos(p[1], z[0])).mean())


def test_loss_matches_the_float64_reference_and_is_symmetric():
    method = tiny_method("byol")
    method.on_train_start()
    method.eval()  # BatchNorm in eval mode: the reference recomputes the same outputs
    views, _ = tiny_batch("byol")
    loss = method(views)
    assert loss.dtype == torch.float32 and 0 <= float(loss.detach()) <= 8
    assert math.isclose(float(loss), _reference_loss(method, views), rel_tol=1e-5)
    assert math.isclose(float(method(views[::-1])), float(loss), rel_tol=1e-5)


def test_gradients_reach_the_online_network_only():
    method = tiny_method("byol")
    method.on_train_start()
    views, _ = tiny_batch("byol")
    method(views).backward()
    names = {n for n, _ in method.named_parameters()}
    assert not any(n.startswith("target.") for n in names)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for n, p in method.named_parameters()
               if not n.startswith("backbone.fc"))
    assert any(n.startswith("target.backbone.") for n, _ in method.named_buffers())


def test_target_starts_as_the_online_network_and_moves_by_tau():
    method = tiny_method("byol")
    method.on_train_start()
    online = dict(method.online.named_parameters())
    target = dict(method.target.named_buffers())
    name = "projector.0.weight"
    torch.testing.assert_close(target[name], online[name].detach(), rtol=0, atol=0)
    before = target[name].clone()
    with torch.no_grad():
        online[name].add_(1.0)
    method.step, method.total_steps = 10, 40
    method.before_step(None)
    tau = target_momentum(method.config.base_momentum, 10, 40)
    torch.testing.assert_close(target[name], tau * before + (1 - tau) * online[name].detach())


class _Interrupted:
    """A batch source that stops the run (as Ctrl-C would) when asked for its ``after``-th batch."""

    def __init__(self, source, after: int):
        self.source, self.after, self.num_classes, self.served = source, after, source.num_classes, 0

    def __len__(self) -> int:
        return len(self.source)

    def epoch(self, epoch: int, start: int = 0):
        for batch in self.source.epoch(epoch, start):
            self.served += 1
            if self.served == self.after:
                raise KeyboardInterrupt
            yield batch


def test_trains_with_a_decreasing_loss_through_deepspeed_and_resumes(tmp_path):
    options = {"base_momentum": 0.99}
    full = pretrain(tiny_config("byol", tmp_path / "full", method_options=options, epochs=3, checkpoint_every=4),
                    tiny_source("byol"))
    losses = [e["loss"] for e in read_log(tmp_path / "full") if e["event"] == "step"]
    assert full.steps == 24 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4  # the predictor learns to predict the target

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_config("byol", part, method_options=options, epochs=3, checkpoint_every=4),
                 _Interrupted(tiny_source("byol"), after=13))
    resumed = pretrain(tiny_config("byol", part, method_options=options, epochs=3, checkpoint_every=4),
                       tiny_source("byol"))
    assert resumed.resumed_from == "step_00000012" and resumed.steps == 24
    for (n, a), b in zip(full.method.state_dict().items(), resumed.method.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)  # bit-identical: the same run
