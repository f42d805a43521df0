"""Configs as data: the shipped YAML files validate, a resolved config round-trips through YAML, every override
path the README documents is accepted, all problems of a config are reported together, ``--dry-run`` prints the
fully resolved config and writes nothing, and the study's grid spec parses."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
from pathlib import Path

import pytest
import yaml

from contrasting.encoders import cli
from contrasting.encoders.backbones import BACKBONES
from contrasting.encoders.config import (
    ConfigErrors,
    config_path,
    load_yaml,
    merge,
    resolve_config,
    shipped_configs,
)
from contrasting.encoders.methods import METHODS
from contrasting.encoders.overrides import parse_override
from contrasting.encoders.training.optim import OPTIMIZERS

README = Path(__file__).resolve().parents[2] / "packages" / "encoders" / "README.md"
STUDY = Path(__file__).resolve().parents[2] / "packages" / "eval" / "src" / "contrasting" / "eval" / "configs" / \
    "study.yaml"
METHOD_CONFIGS = ("simclr", "mocov1", "mocov2", "swav", "pirl", "supervised", "byol")
CORPUS_CONFIGS = ("imagenet", "places365", "kinetics", "taskonomy", "imagenet_half", "imagenet_quarter",
                  "imagenet_half_linear", "imagenet_half_log")
TINY = {"train": {"epochs": 1, "batch_size": 2}, "backbone": {"name": "resnet18", "small_stem": True, "width": 8}}


def _registered(method: str) -> None:
    if method not in METHODS:
        pytest.skip(f"method {method!r} is not registered yet (being added in parallel); its config is not checked")


def test_every_method_and_corpus_is_shipped():
    names = set(shipped_configs())
    assert set(METHOD_CONFIGS) | {f"corpus/{c}" for c in CORPUS_CONFIGS} <= names
    assert {n for n in METHODS.names() if n != "random"} <= names, "a registered method without a shipped config"


@pytest.mark.parametrize("method", METHOD_CONFIGS)
@pytest.mark.parametrize("corpus", CORPUS_CONFIGS)
def test_every_shipped_method_and_corpus_pair_validates(method, corpus):
    _registered(method)
    layers = [load_yaml(config_path(method)), load_yaml(config_path(f"corpus/{corpus}")), TINY]
    config = resolve_config(*layers)
    assert config.method == method and config.data.corpus.endswith(("/imagenet", f"/{corpus}"))
    assert "${" not in config.data.corpus  # the oc.env interpolation resolved
    assert config.train.epochs == 1 and config.backbone == "resnet18"


@pytest.mark.parametrize("method", METHOD_CONFIGS)
def test_shipped_method_configs_state_the_paper_recipe(method):
    """Each file spells out its method's optimizer and cites the paper and the study."""
    _registered(method)
    path = config_path(method)
    text, raw = path.read_text(), load_yaml(path)
    assert raw["method"]["name"] == method and "Kotar et al., ICCV 2021" in text
    paper = dict(METHODS.get(method).spec.optim)
    if paper:
        assert {k: raw["optim"][k] for k in paper} == pytest.approx(paper)


def test_corpus_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONTRASTING_DATA", str(tmp_path))
    config = resolve_config(load_yaml(config_path("corpus/imagenet_half_log")))
    assert config.data.corpus == f"imagenet/half_log:{tmp_path}/imagenet"


@pytest.mark.parametrize("method", [*METHOD_CONFIGS, "random"])
def test_round_trip_resolve_save_load_resolve(method, tmp_path):
    if method != "random":
        _registered(method)
    layers = [load_yaml(config_path(method))] if method != "random" else [{"method": {"name": "random"}}]
    first = resolve_config(*layers, load_yaml(config_path("corpus/places365")), parse_override("train.epochs=3"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(first.to_dict(), sort_keys=False))
    second = resolve_config(load_yaml(path))
    assert second == first and second.to_dict() == first.to_dict()
    assert yaml.safe_load(path.read_text()) == first.to_dict()


def test_resolved_config_has_every_default():
    """SwAV's resolved config names every field of its method, backbone and optimizer config classes."""
    config = resolve_config({"method": {"name": "swav"}})
    full = config.to_dict()
    for section, registry, name in (("method", METHODS, "swav"), ("optim", OPTIMIZERS, "lars"),
                                    ("backbone", BACKBONES, "resnet50")):
        fields = {f.name for f in dataclasses.fields(registry.get(name).config_cls)}
        assert fields | {"name"} == set(full[section])
    assert full["method"]["prototypes"] == 3000 and full["method"]["assign_views"] == [0, 1]
    assert full["backbone"]["small_stem"] is False and full["backbone"]["width"] == 64
    assert full["train"]["loggers"] == ["jsonl", "csv"]
    assert config.method_options == {}  # what the layers gave (the checkpoint fingerprint) stays sparse


def _readme_overrides() -> list[str]:
    text = README.read_text()
    found = re.findall(r"`((?:method|backbone|optim|data|train|deepspeed)\.[\w.]+=[^`\s]+)`", text)
    assert len(found) >= 20, found
    return sorted(set(found))


def _method_with(field: str) -> str:
    for name in ("mocov2", "swav", "simclr"):
        if field in {f.name for f in dataclasses.fields(METHODS.get(name).config_cls)}:
            return name
    raise AssertionError(f"no method has a field {field!r}")


@pytest.mark.parametrize("override", _readme_overrides())
def test_every_documented_override_is_accepted(override):
    layer = parse_override(override)
    section, rest = override.split(".", 1)
    key, value = rest.split("=", 1)
    base = {"method": {"name": _method_with(key)}} if section == "method" and key != "name" else {}
    if "tensorboard" in value:
        pytest.importorskip("tensorboard", reason="train.loggers=[...tensorboard] needs tensorboard installed")
    config = resolve_config(base, layer).to_dict()
    node = config
    for part in [section, *key.split(".")]:
        node = node[part]
    assert node == yaml.safe_load(value) or node == pytest.approx(float(value))


def test_overrides_and_merges_are_omegaconf_shaped():
    assert parse_override("optim.lr=1e-4") == {"optim": {"lr": 1e-4}}
    assert parse_override("method.assign_views=[0, 1]") == {"method": {"assign_views": [0, 1]}}
    assert parse_override("train.max_steps=~") == {"train": {"max_steps": None}}
    assert merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}, "d": 4}) == {"a": {"b": 1, "c": [3]}, "d": 4}
    assert merge({"a": {"b": 1}}, {"a": [0]}) == {"a": [0]}  # another kind replaces
    config = resolve_config({"method": {"name": "mocov2"}, "train": {"output_dir": "runs/${method.name}"}})
    assert config.train.output_dir == "runs/mocov2"
    with pytest.raises(ValueError, match="train.output_dir: cannot resolve an interpolation"):
        resolve_config({"train": {"output_dir": "runs/${nowhere.at_all}"}})


def test_every_section_has_a_typed_schema_that_accepts_its_defaults():
    """Each section's dataclass is an OmegaConf structured schema; the resolved defaults of every method pass it."""
    from omegaconf import OmegaConf

    from contrasting.encoders.backbones import BACKBONES
    from contrasting.encoders.config import DataSection, TrainSection, schema_problems

    for method in METHODS.names():
        tree = resolve_config({"method": {"name": method}}).to_dict()
        for section, registry in (("method", METHODS), ("backbone", BACKBONES), ("optim", OPTIMIZERS)):
            values = dict(tree[section])
            cls = registry.get(values.pop("name")).config_cls
            assert OmegaConf.structured(cls) is not None
            assert schema_problems(section, cls, values) == []
        for section, cls in (("data", DataSection), ("train", TrainSection)):
            assert schema_problems(section, cls, tree[section]) == [], section


def test_the_typed_schema_refuses_a_value_of_another_type():
    from contrasting.encoders.config import DataSection, schema_problems

    (problem,) = schema_problems("data", DataSection, {"image_size": "large"})
    assert str(problem).startswith("data.image_size: ") and "Integer" in str(problem)
    (problem,) = schema_problems("method", METHODS.get("swav").config_cls, {"prototypes": [1, 2]})
    assert str(problem).startswith("method.prototypes: ")


def test_several_bad_keys_are_reported_together():
    with pytest.raises(ConfigErrors) as caught:
        resolve_config({"trian": {}}, parse_override("optim.lr=-1"), parse_override("train.epoch=3"),
                       parse_override("data.workers=-2"), parse_override("method.temperature=0"),
                       parse_override("train.precision=fp8"), parse_override("backbone.name=vit"))
    message = str(caught.value)
    assert "\n" not in message and len(caught.value.errors) == 7
    for part in ("unknown config section 'trian'; valid config sections: backbone", "optim.lr: expected a finite "
                 "number > 0, got -1", "unknown train field 'epoch'; valid train fields:", "data.workers: expected "
                 "an integer >= 0, got -2", "method.temperature: expected a finite number > 0, got 0",
                 "unknown precision 'fp8'; valid precisions: auto, bf16, fp16, fp32", "unknown backbone 'vit'"):
        assert part in message


def test_one_bad_key_raises_as_itself():
    with pytest.raises(ValueError, match=r"^train.epochs: expected an integer >= 1, got 0$") as caught:
        resolve_config(parse_override("train.epochs=0"))
    assert not isinstance(caught.value, ConfigErrors)


def _cli(argv: list[str], err: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), err or io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("flag", ["--dry-run", "--print-config"])
def test_dry_run_prints_the_full_config_and_writes_nothing(flag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = _cli(["pretrain", "--config", "swav", "--config", "corpus/imagenet", "--corpus", "synthetic",
                         "--output", str(tmp_path / "run"), "train.epochs=2", flag])
    assert rc == 0, err
    printed = yaml.safe_load(out)
    assert printed["method"]["prototypes"] == 3000 and printed["method"]["sinkhorn_iterations"] == 3
    assert printed["optim"]["final_lr_ratio"] == 0.001 and printed["train"]["epochs"] == 2
    assert printed["data"]["corpus"] == "synthetic"  # the flag comes after the files
    assert resolve_config(printed) == resolve_config(printed)
    assert list(tmp_path.iterdir()) == []


def test_dry_run_shows_a_corpus_whose_root_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("CONTRASTING_DATA", str(tmp_path / "nowhere"))
    rc, out, err = _cli(["pretrain", "--config", "mocov2", "--config", "corpus/places365", "--dry-run",
                         "--output", str(tmp_path / "run")])
    assert rc == 0 and "is not a directory (a run would stop here)" in err
    assert yaml.safe_load(out)["data"]["corpus"] == f"places365:{tmp_path}/nowhere/places365"


def test_config_names_a_path_or_a_shipped_config(tmp_path):
    assert config_path("mocov2") == config_path("mocov2.yaml") == shipped_configs()["mocov2"]
    own = tmp_path / "mine.yaml"
    own.write_text("train: {epochs: 2}\n")
    assert config_path(str(own)) == own
    with pytest.raises(FileNotFoundError, match="shipped configs: .*corpus/imagenet"):
        config_path("mocov9")
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:  # argparse's refusal of the flag
        _cli(["pretrain", "--config", "mocov9", "--dry-run"], err)
    assert exit_.value.code == 2 and "argument --config: no such file: 'mocov9', nor a shipped config" in err.getvalue()


def test_several_bad_keys_are_one_cli_line(tmp_path):
    rc, out, err = _cli(["pretrain", "--corpus", "synthetic", "--output", str(tmp_path / "run"), "--dry-run",
                         "optim.lr=-1", "train.epochs=0", "train.loggers=[jsonl,nope]"])
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("contrasting pretrain: error: optim.lr: expected a finite number > 0, got -1; "
                          "train.epochs: expected an integer >= 1, got 0; unknown logger 'nope'; valid loggers:")


def test_the_study_grid_parses():
    from contrasting.eval.catalog.tasks import TASKS
    from contrasting.eval.grid.spec import load_spec

    spec = load_spec(STUDY, validate=False)
    assert len(spec.tasks) == 20 and all(t.name in TASKS for t in spec.tasks)
    names = [e.name for e in spec.encoders]
    assert len(names) == len(set(names)) >= 30
    assert {"MoCov2Places", "SWAVImageNet_800", "PIRLImageNet", "SimCLRImageNet", "Supervised", "Random"} <= set(names)
    runs = [e for e in spec.encoders if e.kind == "run"]
    assert {e.method for e in runs} == {"mocov1", "mocov2", "swav", "pirl", "simclr"}
    assert [t.name for t in spec.tasks if t.reference] == ["imagenet"]
    from contrasting.eval.catalog.tasks import catalog_hparam_check

    assert [h.name for h in spec.hparams] == ["paper"] and dict(spec.hparams[0].values) == {"decay": "none",
                                                                                            "refit": True}
    assert catalog_hparam_check(dict(spec.hparams[0].values)) == []


@pytest.mark.parametrize("name", ["quick", "full", "tiny"])
def test_shipped_demo_presets_equal_the_demo(name):
    """The YAML demo presets are data copies of ``demo.PRESETS`` (which stays the owner): equal field by field."""
    from contrasting.eval.demo import PRESETS, Preset

    raw = yaml.safe_load((STUDY.parent / f"demo_{name}.yaml").read_text())
    preset = PRESETS[name]
    assert set(raw) == {f.name for f in dataclasses.fields(Preset)}
    expected = {f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)}
    expected["scene"] = dict(expected["scene"])
    assert raw == yaml.safe_load(yaml.safe_dump(_lists(expected)))


def _lists(value):
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
