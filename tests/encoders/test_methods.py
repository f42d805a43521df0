"""Methods: forward/backward of every method, MoCo's momentum encoder and queue, SwAV's prototypes, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from contrasting.encoders import METHODS, UnknownNameError, build_method
from contrasting.encoders.methods import encode_views

from .helpers import TRAINED_METHODS, tiny_backbone, tiny_batch, tiny_method


def _set(param, value):
    with torch.no_grad():
        param.copy_(value)


def test_registry_lists_every_method():
    assert METHODS.names() == sorted([*TRAINED_METHODS, "random"])


@pytest.mark.parametrize("name", TRAINED_METHODS)
def test_forward_backward(name):
    method = tiny_method(name)
    views, labels, *indices = tiny_batch(name)  # PIRL: and each sample's corpus index
    method.before_step(_set)
    loss = method(views, labels, *indices)
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    grads = [p.grad for p in method.backbone.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_simclr_identical_views_give_the_closed_form():
    method = tiny_method("simclr").eval()
    x = tiny_batch("simclr")[0][0]
    loss = method([x, x])
    # every row: positive s = 1/τ, negatives ≤ 1/τ; identical projections would give log(2N − 1)
    assert loss.item() <= math.log(2 * x.shape[0] - 1) + 1e-4


def test_moco_momentum_encoder_is_buffers_and_follows_the_update():
    method = tiny_method("mocov2", momentum=0.9)
    param_names = {n for n, _ in method.named_parameters()}
    assert not any(n.startswith("momentum_encoder.") for n in param_names)
    assert "momentum_encoder.backbone.conv1.weight" in dict(method.named_buffers())
    method.on_train_start()
    k_conv = method.momentum_encoder["backbone"].conv1.weight
    torch.testing.assert_close(k_conv, method.backbone.conv1.weight.detach())
    before = k_conv.clone()
    with torch.no_grad():
        method.backbone.conv1.weight.add_(1.0)
    running = method.momentum_encoder["backbone"].bn1.running_mean.clone()
    method.before_step(_set)  # θ_k ← 0.9 θ_k + 0.1 θ_q
    torch.testing.assert_close(k_conv, 0.9 * before + 0.1 * method.backbone.conv1.weight.detach())
    torch.testing.assert_close(method.momentum_encoder["backbone"].bn1.running_mean, running)  # stats untouched


def test_moco_keys_carry_no_gradient_to_the_momentum_encoder():
    method = tiny_method("mocov2")
    views, _ = tiny_batch("mocov2")
    method(views).backward()
    assert all(not b.requires_grad for b in method.momentum_encoder.buffers())


def test_moco_queue_is_fifo_with_wraparound():
    method = tiny_method("mocov1", queue_size=10)
    keys = F.normalize(torch.randn(16, method.queue.shape[1]), dim=1)
    method.enqueue(keys[:4])
    method.enqueue(keys[4:8])
    assert int(method.queue_ptr) == 8
    torch.testing.assert_close(method.queue[:8], keys[:8])
    method.enqueue(keys[8:14])  # 6 keys: positions 8, 9, 0, 1, 2, 3
    assert int(method.queue_ptr) == 4
    torch.testing.assert_close(method.queue[8:10], keys[8:10])
    torch.testing.assert_close(method.queue[0:4], keys[10:14])
    torch.testing.assert_close(method.queue[4:8], keys[4:8])  # the oldest survivors


def test_moco_forward_enqueues_this_batch_keys_in_training_only():
    method = tiny_method("mocov2")
    views, _ = tiny_batch("mocov2")
    method.eval()
    method(views)
    assert int(method.queue_ptr) == 0
    method.train()
    method(views)
    assert int(method.queue_ptr) == views[0].shape[0]


def test_swav_prototypes_normalised_each_step_and_frozen_first():
    method = tiny_method("swav", freeze_prototypes_steps=2)
    with torch.no_grad():
        method.prototypes.weight.mul_(3.0)
    method.before_step(_set)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(16))
    views, _ = tiny_batch("swav")
    for step, frozen in ((0, True), (1, True), (2, False)):
        method.zero_grad()
        method.step = step
        assert method.prototypes_frozen is frozen
        method(views).backward()
        grad = method.prototypes.weight.grad
        assert bool(grad.abs().sum() == 0) is frozen, f"step {step}"
    assert method.group_options() == {"prototypes.": {"frozen_steps": 2}}


def test_swav_queue_fills_and_is_saved_in_the_state_dict():
    method = tiny_method("swav", queue_length=16, queue_start_step=0)
    views, _ = tiny_batch("swav")
    method(views)
    method(views)
    state = method.state_dict()
    assert state["criterion.queue"].shape == (2, 16, 128)  # 2 assign views × 16 rows × projection_dim
    assert state["criterion._extra_state"]["filled"] == 16
    method(views)  # the full queue now joins the Sinkhorn


def test_encode_views_groups_equal_sizes():
    calls = []

    def encoder(x):
        calls.append(x.shape[0])
        return x.mean(dim=(1, 2, 3))

    views = [torch.randn(2, 3, 8, 8)] * 2 + [torch.randn(2, 3, 4, 4)] * 3
    out = encode_views(encoder, views)
    assert calls == [4, 6] and [o.shape for o in out] == [(2,)] * 5


def test_random_is_not_trainable():
    method = build_method("random", tiny_backbone())
    assert not method.trainable
    with pytest.raises(RuntimeError, match="not trained"):
        method(tiny_batch("simclr")[0])


def test_supervised_needs_labels_and_classes():
    with pytest.raises(ValueError, match="num_classes"):
        build_method("supervised", tiny_backbone())
    method = tiny_method("supervised")
    with pytest.raises(ValueError, match="labels"):
        method(tiny_batch("supervised")[0])


def test_bad_views_are_named():
    method = tiny_method("simclr")
    views, _ = tiny_batch("simclr")
    with pytest.raises(ValueError, match=r"views: expected 2 views, got 3"):
        method(views + views[:1])
    with pytest.raises(ValueError, match=r"views\[1\]: has N=4 images but views\[0\] has N=8"):
        method([views[0], views[1][:4]])


def test_unknown_method_and_option_list_the_valid_ones():
    with pytest.raises(UnknownNameError, match=r"unknown method 'npid'; valid methods: byol, mocov1, mocov2, pirl, "
                                               r"random, simclr, supervised, swav"):
        build_method("npid", tiny_backbone())
    with pytest.raises(UnknownNameError, match=r"'queue'.*queue_size"):
        build_method("mocov2", tiny_backbone(), {"queue": 10})
