"""The frozen-feature protocol: probe quality against scikit-learn, frozen encoder, selection, schedules,
reproducibility, the feature cache and the encoder adapter."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torchvision
from sklearn.linear_model import LogisticRegression

from contrasting.eval import FrozenEncoder, get_task, load_encoder, run_cell
from contrasting.eval.cell.features import cached_features
from contrasting.eval.cell.protocol import carve_val, load_task_data, make_optimizer, settings
from tests.eval.conftest import TinyBackbone, tiny_backbone

PROBE_MARGIN = 0.1  # |top-1 of our Adam probe − top-1 of scikit-learn's logistic regression|, same features


def _cached(cache_dir, split: str) -> np.ndarray:
    for header in cache_dir.glob("*.json"):
        meta = json.loads(header.read_text())
        if meta["key"]["split"] == split:
            return np.fromfile(header.with_suffix(".f16"), dtype=np.float16).reshape(meta["shape"])
    raise AssertionError(f"no cached {split} features in {cache_dir}")


def test_linear_probe_matches_sklearn_logistic_regression(world_root, tmp_path):
    spec = get_task("shapes-shape")
    result = run_cell(tiny_backbone(), spec, data_root=world_root, cache_dir=tmp_path, image_size=32, seed=0,
                      hparams=[{"lr": 5e-2, "epochs": 300, "decay": "none"}])
    train, test = (_cached(tmp_path, s).astype(np.float32)[:, 0] for s in ("train", "test"))
    data = load_task_data(spec.with_overrides(image_size=32), world_root)
    tr_idx, _ = carve_val(len(data.train), spec.val_fraction)
    y = np.asarray(data.train.targets)
    clf = LogisticRegression(C=1e4, max_iter=5000).fit(train[tr_idx.numpy()], y[tr_idx.numpy()])
    ref = clf.score(test, np.asarray(data.test.targets))
    assert result.value == pytest.approx(ref, abs=PROBE_MARGIN), (result.value, ref)


def test_cached_and_uncached_evaluation_agree_exactly(world_root):
    kw = dict(data_root=world_root, image_size=32, seed=3, epochs=3, hparams=[{"lr": 1e-2}])
    cached = run_cell(tiny_backbone(), "shapes-camera-shift", feature_cache="memory", **kw)
    uncached = run_cell(tiny_backbone(), "shapes-camera-shift", feature_cache="off", **kw)
    assert cached.value == uncached.value and cached.val_scores[0]["val"] == uncached.val_scores[0]["val"]
    assert cached.config["feature_cache"] == "memory" and uncached.config["feature_cache"] == "off"


def test_same_seed_same_result(world_root):
    a, b = (run_cell(tiny_backbone(), "shapes-count", data_root=world_root, image_size=32, seed=7, epochs=5)
            for _ in range(2))
    assert a.value == b.value and a.val_scores[0]["val"] == b.val_scores[0]["val"]
    r1, r2, r3 = (load_encoder("random:resnet18", seed=s).fingerprint() for s in (1, 1, 2))
    assert r1 == r2 != r3  # a random encoder comes from the seed


def test_selection_uses_validation_and_reports_the_selected_setting(world_root):
    hps = [{"lr": 1e-9}, {"lr": 3e-2}, {"lr": 1e-9, "decay": "step"}]
    r = run_cell(tiny_backbone(), "shapes-shape", data_root=world_root, image_size=32, hparams=hps, epochs=30)
    vals = [v["val"] for v in r.val_scores]
    assert r.selected == r.val_scores[int(np.argmax(vals))]["hparams"]  # the best validation score, first on ties
    assert [v["hparams"]["lr"] for v in r.val_scores] == [1e-9, 3e-2, 1e-9]
    assert all(v["hparams"]["epochs"] == 30 for v in r.val_scores)
    assert r.sizes["val"] == round(0.1 * 180) and r.sizes["train"] + r.sizes["val"] == 180 and r.sizes["test"] == 60


def test_lower_is_better_selection(world_root):
    r = run_cell(tiny_backbone(), "shapes-depth", data_root=world_root, image_size=32, epochs=1,
                 hparams=[{"lr": 1e-2}, {"lr": 1e-9}])
    assert r.higher_is_better is False and r.score == -r.value
    assert r.selected["lr"] == r.val_scores[int(np.argmin([v["val"] for v in r.val_scores]))]["hparams"]["lr"]


class Mutating(TinyBackbone):
    """A backbone that changes its own weights in forward: the protocol must notice."""

    def forward(self, x):
        with torch.no_grad():
            self.layer4[0].weight.add_(1e-3)
        return super().forward(x)


def test_encoder_is_frozen_and_asserted(world_root):
    enc = FrozenEncoder(tiny_backbone(), "tiny")
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())
    before = enc.fingerprint()
    run_cell(enc, "shapes-foreground", data_root=world_root, image_size=32, epochs=1)  # BN statistics too
    assert enc.fingerprint() == before
    with pytest.raises(RuntimeError, match="changed during task 'shapes-texture'"):
        run_cell(Mutating(), "shapes-texture", data_root=world_root, image_size=32, epochs=1)


def test_schedules_step():
    p = torch.nn.Parameter(torch.zeros(1))
    spec = get_task("pets")
    for decay, expected in (("cosine", [1.0, 0.5, 0.0]), ("step", [1.0, 0.1, 0.01]), ("none", [1.0, 1.0, 1.0])):
        sched = settings(spec, {"decay": decay, "epochs": 4, "lr": 1.0})[0]
        opt, lr = make_optimizer([p], sched)
        seen = [opt.param_groups[0]["lr"]]
        for _ in range(4):
            opt.step()
            lr.step()
            seen.append(opt.param_groups[0]["lr"])
        assert [seen[0], seen[2], seen[3]] == pytest.approx(expected[:2] + [expected[2] if decay != "cosine" else
                                                                           seen[3]]), decay
    assert seen and make_optimizer([p], settings(spec, None)[0])[0].defaults["weight_decay"] == 0.0


def test_bad_arguments(world_root):
    with pytest.raises(ValueError, match="hparams: unknown keys \\['learning_rate'\\]"):
        run_cell(tiny_backbone(), "shapes-shape", data_root=world_root, hparams=[{"learning_rate": 1}])
    with pytest.raises(ValueError, match="feature_cache"):
        run_cell(tiny_backbone(), "shapes-shape", data_root=world_root, feature_cache="sometimes")
    with pytest.raises(KeyError, match="unknown task"):
        run_cell(tiny_backbone(), "no-such-task")


def test_feature_cache_reuse_corruption_and_atomicity(tmp_path):
    calls = []

    def compute(out):
        calls.append(1)
        out[:] = np.arange(out.size, dtype=np.float16).reshape(out.shape)

    key = {"encoder": "x", "split": "train"}
    a, hit = cached_features(key, (4, 1, 3), compute, tmp_path)
    a = np.array(a)  # a copy: the memory map would see the corruption below
    assert not hit and len(calls) == 1 and float(a[1, 0, 0]) == 3.0
    b, hit = cached_features(key, (4, 1, 3), compute, tmp_path)
    assert hit and len(calls) == 1 and np.array_equal(a, b)
    data = next(tmp_path.glob("*.f16"))
    raw = bytearray(data.read_bytes())
    raw[5] ^= 0xFF
    data.write_bytes(bytes(raw))
    c, hit = cached_features(key, (4, 1, 3), compute, tmp_path)
    assert not hit and len(calls) == 2 and np.array_equal(a, c)  # corrupt → recomputed
    _, hit = cached_features(key, (5, 1, 3), compute, tmp_path)
    assert not hit and len(calls) == 3  # a different shape is never read as this one
    assert not list(tmp_path.glob("*tmp*"))

    def fail(out):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_features({"encoder": "y"}, (2, 1, 3), fail, tmp_path)
    assert not list(tmp_path.glob("*tmp*")) and len(list(tmp_path.glob("*.json"))) == 1


def test_disk_cache_is_reused_across_cells(world_root, tmp_path):
    kw = dict(data_root=world_root, image_size=32, epochs=2, cache_dir=tmp_path)
    first = run_cell(tiny_backbone(), "shapes-digit", **kw)
    second = run_cell(tiny_backbone(), "shapes-digit", **kw)
    assert first.config["cache_hits"] == {"train": False, "test": False}
    assert second.config["cache_hits"] == {"train": True, "test": True} and second.value == first.value
    other = run_cell(tiny_backbone(seed=1), "shapes-digit", **kw)  # another encoder: another key
    assert other.config["cache_hits"] == {"train": False, "test": False}


def test_checkpoint_layouts(tmp_path):
    model = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save({k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}, path)
    enc = load_encoder(path)
    assert enc.widths["embedding"] == 512
    assert torch.equal(enc.backbone.conv1.weight, model.conv1.weight)
    bad = tmp_path / "unknown.pth"
    torch.save({"trunk.x." + k: v for k, v in model.state_dict().items()}, bad)
    with pytest.raises(ValueError, match="(?i)layout"):  # the encoders package's strict LayoutError
        load_encoder(bad)
    moco = tmp_path / "moco.pth.tar"  # official MoCo layout: converted by contrasting.encoders, strictly
    torch.save({"state_dict": {"module.encoder_q." + k: v for k, v in model.state_dict().items()}}, moco)
    assert torch.equal(load_encoder(moco).backbone.layer4[1].conv2.weight, model.layer4[1].conv2.weight)
    enc = load_encoder("random:resnet18", seed=0)
    assert enc.widths == {"stem": 64, "stage1": 64, "stage2": 128, "stage3": 256, "stage4": 512, "embedding": 512}
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "absent.pth")


def test_cells_report_standard_error_baseline_and_per_sample_statistics(world_root):
    from contrasting.eval.catalog.metric_stats import decode_samples, value_from_totals

    for task in ("shapes-texture", "shapes-foreground"):
        r = run_cell("random:resnet18", task, hparams={"epochs": 1}, data_root=world_root, seed=0)
        metric, rows = decode_samples(r.metrics["per_sample"])
        assert metric == r.metric and len(rows) == r.sizes["test"]
        assert float(value_from_totals(metric, rows.sum(0))) == pytest.approx(r.value)
        assert 0 <= r.se < 0.2 and r.metrics["se"] == r.se and (r.se > 0 or r.value == 0)
        assert 0 <= r.baseline < 1 and r.metrics["baseline"] == r.baseline


def test_refit_trains_the_selected_setting_on_train_and_validation(world_root, monkeypatch):
    from contrasting.eval.cell import protocol

    seen = []
    original = protocol._train_on_embeddings

    def spy(head, source, labels, idx, *args, **kwargs):
        seen.append(len(idx))
        return original(head, source, labels, idx, *args, **kwargs)

    monkeypatch.setattr(protocol, "_train_on_embeddings", spy)
    hps = [{"lr": 1e-9, "refit": True}, {"lr": 3e-2, "refit": True}]
    kw = dict(data_root=world_root, image_size=32, epochs=10, seed=3)
    plain = run_cell(tiny_backbone(), "shapes-shape", hparams=[{k: v for k, v in h.items() if k != "refit"}
                                                              for h in hps], **kw)
    assert seen == [162, 162] and plain.sizes["final_train"] == 162
    seen.clear()
    refit = run_cell(tiny_backbone(), "shapes-shape", hparams=hps, **kw)
    assert seen == [162, 162, 180] and refit.sizes["final_train"] == 180 and refit.selected["refit"] is True
    assert [v["val"] for v in refit.val_scores] == [v["val"] for v in plain.val_scores]  # the same selection
    assert refit.timings["refit_s"] > 0


@pytest.mark.parametrize("pixel_cache", [False, True])
def test_refit_of_a_pixel_head_sees_the_validation_images(world_root, monkeypatch, pixel_cache):
    from contrasting.eval.cell import protocol

    sizes = []
    original = protocol._fit_pixel_head

    def spy(**kwargs):
        sizes.append(sum(len(y) for _, y in kwargs["loader"]))
        return original(**kwargs)

    monkeypatch.setattr(protocol, "_fit_pixel_head", spy)
    r = run_cell(tiny_backbone(), "shapes-foreground", data_root=world_root, image_size=32, epochs=1,
                 hparams={"refit": True, "batch_size": 32}, pixel_cache=pixel_cache)
    assert sizes == [162, 180] and r.sizes["final_train"] == 180 and np.isfinite(r.value)
