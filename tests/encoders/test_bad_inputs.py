"""Bad inputs to ``pretrain``, ``export``, ``inspect-checkpoint`` and the run config: each is refused before any
work starts, as one line ``contrasting <cmd>: error: ...`` (or argparse's usage + one error line naming the flag),
with exit status 2 for input the user can fix and 1 for an unusable checkpoint; nothing is written, and training
never starts. Interrupted writes' temporary files are removed on the next start."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from contrasting.data.atomic import remove_stale_temps
from contrasting.encoders import build_backbone, cli
from contrasting.encoders.config import DataSection, TrainSection, load_yaml, resolve_config
from contrasting.encoders.overrides import parse_override
from contrasting.encoders.training import trainer

HYPOTHESIS = settings(max_examples=25, deadline=None)


# --------------------------------------------------------------------------------------------------- helpers


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@contextlib.contextmanager
def _no_training():
    """Fail the test if ``trainer.pretrain`` (the engine) is reached."""
    calls = []
    with mock.patch.object(trainer, "pretrain", side_effect=lambda *a, **k: calls.append(a) or 0):
        yield calls
    assert not calls, "training started on a bad input"


def refused(capsys, argv: list[str], status: int, *needles: str, root: Path | None = None) -> str:
    """Run ``contrasting argv`` in-process; assert it ends with ``status`` and one error line containing
    ``needles`` (argparse: usage lines, then one error line naming the flag), no traceback, nothing written under
    ``root``, no training. Returns the error line."""
    before = _files(root) if root is not None else None
    with _no_training():
        try:
            rc = cli.main(argv)
        except SystemExit as exit_:  # argparse's refusal
            rc = exit_.code
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert rc == status, out.err
    assert "Traceback" not in out.err and out.out == ""
    prefix = f"contrasting {argv[0]}: error: "
    if lines and lines[0].startswith("usage:"):
        assert lines[-1].startswith(prefix), out.err  # names the flag: see ``needles``
        assert all(line.startswith((" ", "usage:")) for line in lines[:-1]), out.err
    else:
        assert len(lines) == 1 and lines[0].startswith(prefix), out.err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    if root is not None:
        assert _files(root) == before, "a refused command wrote files"
    return lines[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Crafted inputs: a good tiny checkpoint and broken ones of every kind."""
    root = tmp_path_factory.mktemp("inputs")
    sd = build_backbone("resnet18", small_stem=True, width=8).state_dict()
    paths = {name: root / f"{name}.pt" for name in ("good", "empty", "text", "truncated", "notorch", "binary",
                                                   "list", "unknown_keys", "objects", "legacy_truncated",
                                                   "mis_shaped")}
    torch.save(sd, paths["good"])
    paths["empty"].write_bytes(b"")
    paths["text"].write_text("these are not the weights you are looking for\n")
    data = paths["good"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(paths["notorch"], "w") as archive:
        archive.writestr("readme.txt", "a zip, not a checkpoint")
    paths["binary"].write_bytes(bytes(range(7, 256)) * 3)
    torch.save([1, 2, 3], paths["list"])
    torch.save({f"backbone.{k}": v for k, v in sd.items()}, paths["unknown_keys"])
    torch.save({**sd, "args": argparse.Namespace(lr=0.1)}, paths["objects"])
    torch.save(sd, paths["legacy_truncated"], _use_new_zipfile_serialization=False)
    legacy = paths["legacy_truncated"].read_bytes()
    paths["legacy_truncated"].write_bytes(legacy[: len(legacy) // 3])
    torch.save({**sd, "conv1.weight": torch.zeros(8, 3, 5, 5)}, paths["mis_shaped"])
    paths["dir"] = root / "folder.pt"
    paths["dir"].mkdir()
    paths["yaml_bad"] = root / "bad.yaml"
    paths["yaml_bad"].write_text("train: {epochs: [1, 2\n")
    paths["yaml_list"] = root / "list.yaml"
    paths["yaml_list"].write_text("- method\n- train\n")
    paths["yaml_binary"] = root / "binary.yaml"
    paths["yaml_binary"].write_bytes(b"\xff\xfe\x00train")
    paths["yaml_zero"] = root / "zero.yaml"
    paths["yaml_zero"].write_text("data: {image_size: 0}\n")
    run = root / "run" / "checkpoints" / "step_00000001"  # a run whose model-states file is text
    run.mkdir(parents=True)
    (run / "mp_rank_00_model_states.pt").write_text("not a checkpoint")
    (run / "complete.json").write_text("{}")
    paths["run_text"] = root / "run"
    return paths


# --------------------------------------------------------------------------------------------------- pretrain

PRETRAIN_FLAGS = [  # (arguments, status, what the error line names)
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got '0'"),
    (["--batch-size", "-4"], "argument --batch-size: expected an integer >= 1"),
    (["--image-size", "0"], "argument --image-size: expected an integer >= 1, got '0'"),
    (["--max-steps", "ten"], "argument --max-steps: expected an integer >= 1, got 'ten'"),
    (["--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["--image-size", "1.5"], "argument --image-size"),
    (["--config", "{missing}"], "argument --config: no such file"),
    (["--config", "{dir}"], "argument --config: expected a file, got the folder"),
    (["--output", "{good}"], "argument --out/--output: expected a folder to write into, got the file"),
    (["--out", "{good}/run"], "argument --out/--output: cannot make the folder"),
]


PRETRAIN_VALUES = [  # (arguments, the error line's text)
    (["data.image_size=0"], "data.image_size: expected an integer >= 1, got 0"),
    (["optim.lr=.nan"], "optim.lr: expected a finite number > 0, got nan"),
    (["optim.lr=-0.1"], "optim.lr: expected a finite number > 0"),
    (["train.epochs=abc"], "train.epochs: expected an integer >= 1, got 'abc'"),
    (["method.temperature=0"], "method.temperature: expected a finite number > 0, got 0"),
    (["optim.weight_decay=-1e-4"], "optim.weight_decay: expected a finite number >= 0"),
    (["data.workers=-2"], "data.workers: expected an integer >= 0, got -2"),
    (["train.grad_accum=1e400"], "train.grad_accum: expected an integer >= 1, got inf"),
    (["train.epochs"], "override 'train.epochs': expected key.path=value"),
    (["train.epochs=[1"], "override 'train.epochs=[1': the value is not valid YAML"),
    (["trian.epochs=1"], "unknown config section 'trian'"),
    (["train=3"], "train: expected a mapping of train fields"),
    (["--method", "npid"], "unknown method 'npid'"),
    (["--precision", "fp8"], "unknown precision 'fp8'"),
    (["train.output_dir={good}"], "train.output_dir: expected a folder to write the run into, got the file"),
    (["train.knn_train={missing}", "train.knn_test={missing}"], "train.knn_train: expected an image folder"),
    (["--config", "{yaml_bad}"], "bad.yaml: not valid YAML"),
    (["--config", "{yaml_list}"], "list.yaml: expected a YAML mapping of sections"),
    (["--config", "{yaml_binary}"], "binary.yaml: expected a UTF-8 YAML file"),
    (["--config", "{yaml_zero}"], "data.image_size: expected an integer >= 1, got 0"),
]


@pytest.mark.parametrize(("args", "message"), PRETRAIN_FLAGS + PRETRAIN_VALUES)
def test_pretrain_refuses_bad_flags_and_values_before_training(args, message, files, tmp_path, capsys):
    names = {k: str(v) for k, v in files.items()} | {"missing": str(tmp_path / "missing.yaml")}
    argv = ["pretrain", "--corpus", "synthetic", "--output", str(tmp_path / "run"), *[a.format(**names) for a in args]]
    refused(capsys, argv, 2, message, root=tmp_path)
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------------------------------- export / inspect

CHECKPOINT_CASES = [  # (file key, status, the error line's text)
    ("empty", 1, "the checkpoint file is empty (expected a file written by torch.save"),
    ("text", 1, "the checkpoint file holds text, not a PyTorch checkpoint"),
    ("truncated", 1, "is a truncated or corrupt zip archive"),
    ("notorch", 1, "is a zip archive without data.pkl, not a PyTorch checkpoint"),
    ("binary", 1, "holds data of another format, not a PyTorch checkpoint"),
    ("legacy_truncated", 1, "not a readable checkpoint file"),
    ("run_text", 1, "the model-states file holds text"),
    ("dir", 2, "no committed checkpoint (expected a run directory"),
    ("missing", 2, "no such file or directory"),
    ("list", 2, "expected a state dict (a mapping of names to tensors), got list"),
    ("unknown_keys", 2, "matches no known layout"),
    ("objects", 2, "holds objects other than tensors and containers"),
    ("mis_shaped", 2, "shape mismatches"),
]


def _source(files, key: str, tmp_path: Path) -> str:
    return str(tmp_path / "missing.pt") if key == "missing" else str(files[key])


@pytest.mark.parametrize(("key", "status", "message"), CHECKPOINT_CASES)
def test_inspect_refuses_bad_checkpoints(key, status, message, files, tmp_path, capsys):
    line = refused(capsys, ["inspect-checkpoint", _source(files, key, tmp_path)], status, message, root=tmp_path)
    assert Path(_source(files, key, tmp_path)).name in line  # names the file


@pytest.mark.parametrize(("key", "status", "message"), CHECKPOINT_CASES)
def test_export_refuses_bad_checkpoints_and_writes_nothing(key, status, message, files, tmp_path, capsys):
    refused(capsys, ["export", _source(files, key, tmp_path), "--out", str(tmp_path / "out.pt")], status, message,
            root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_inspect_refuses_bad_options(files, tmp_path, capsys):
    good = str(files["good"])
    refused(capsys, ["inspect-checkpoint", good, "--layout", "mocco"], 2, "unknown checkpoint layout 'mocco'; valid")
    refused(capsys, ["inspect-checkpoint", good, "--layout", "moco"], 2, "good.pt: cannot infer the architecture")
    refused(capsys, ["inspect-checkpoint"], 2, "the following arguments are required: source")
    refused(capsys, ["inspect-checkpoint", good, "--layout"], 2, "argument --layout: expected one argument")


def test_export_refuses_bad_targets(files, tmp_path, capsys):
    good = str(files["good"])
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    cases = [
        (["--out", str(tmp_path / "adir")], "argument --out: expected a file to write, got the folder"),
        (["--out", str(tmp_path / "afile" / "out.pt")], "expected a folder to write into, got the file"),
        (["--out", str(tmp_path / "x.pt"), "--layout", "nope"], "unknown checkpoint layout 'nope'"),
        ([], "the following arguments are required: --out"),
    ]
    for args, message in cases:
        refused(capsys, ["export", good, *args], 2, message, root=tmp_path)


def test_a_failed_export_removes_its_temporary_file(files, tmp_path, capsys, monkeypatch):
    def no_rename(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", no_rename)
    refused(capsys, ["export", str(files["good"]), "--out", str(tmp_path / "out.pt")], 2, "Permission denied",
            root=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------------- stale temps


def test_export_removes_its_targets_stale_temps(files, tmp_path, capsys):
    stale = [tmp_path / ".out.pt.ab12cd_9.tmp", tmp_path / ".out.pt.json.zz99yy88.tmp"]
    kept = [tmp_path / ".other.pt.ab12cd_9.tmp", tmp_path / ".out.pt.short.tmp", tmp_path / "out.pt.ab12cd_9.tmp"]
    for path in stale + kept:
        path.write_bytes(b"half a file")
    assert cli.main(["export", str(files["good"]), "--out", str(tmp_path / "out.pt")]) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert (tmp_path / "out.pt").is_file() and (tmp_path / "out.pt.json").is_file()


def test_pretrain_start_removes_the_run_folders_stale_temps(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints" / "step_00000002").mkdir(parents=True)
    stale = [run / ".config.yaml.k3j5h7g9.tmp", run / ".backbone.pt.abcdefgh.tmp",
             run / "checkpoints" / ".latest.12345678.tmp",
             run / "checkpoints" / "step_00000002" / ".complete.json.a_b_c_d_.tmp"]
    kept = [run / "notes.tmp", run / ".notes.tmp", run / ".x.TOOLONG99.tmp",
            run / "tensorboard" / ".ev.abcdefgh.tmp", tmp_path / ".beside.abcdefgh.tmp"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"interrupted")
    assert cli.main(["pretrain", "--method", "random", "--backbone", "resnet18", "--small-stem", "--output", str(run),
                     "backbone.width=8"]) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_remove_stale_temps_only_matches_the_atomic_writers_names(tmp_path):
    from contrasting.data.atomic import atomic_write_bytes

    real = tmp_path / "real.txt"
    with mock.patch.object(os, "replace", side_effect=KeyboardInterrupt):  # interrupted between write and rename
        with contextlib.suppress(KeyboardInterrupt):
            atomic_write_bytes(real, b"data")
    leftover = tmp_path / ".real.txt.abcdefgh.tmp"  # what a kill -9 (no cleanup) leaves: the writer's own pattern
    leftover.write_bytes(b"data")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".x.abcdefgh.tmp").write_bytes(b"")
    assert remove_stale_temps(tmp_path) == [leftover]
    assert remove_stale_temps(tmp_path / "missing") == []
    assert (tmp_path / "sub" / ".x.abcdefgh.tmp").exists()


# --------------------------------------------------------------------------------------------------- the run config

def _bad(kind: str):
    """Hypothesis values that break a field of ``kind`` (each also fails the field's type check)."""
    junk = st.sampled_from([math.nan, math.inf, -math.inf, True, [1], {"a": 1}]) | st.from_regex(r"[a-z]{1,8}",
                                                                                              fullmatch=True)
    return {
        "size": st.integers(max_value=0) | st.floats(0.1, 1e6).filter(lambda x: not x.is_integer()),
        "count": st.integers(max_value=-1) | st.floats(0.5, 99.5).filter(lambda x: not x.is_integer()),
        "positive": st.floats(max_value=0, allow_nan=False),
        "nonnegative": st.floats(max_value=-1e-12, allow_nan=False),
        "fraction": st.floats(min_value=1.0001, allow_nan=False) | st.floats(max_value=-1e-12, allow_nan=False),
    }[kind] | junk


NUMERIC = {  # dotted key → (kind, method the key belongs to)
    "data.image_size": ("size", "mocov2"), "data.workers": ("count", "mocov2"), "train.epochs": ("size", "mocov2"),
    "train.batch_size": ("size", "mocov2"), "train.grad_accum": ("size", "mocov2"),
    "train.max_steps": ("size", "mocov2"), "train.keep_checkpoints": ("size", "mocov2"),
    "train.log_every": ("size", "mocov2"), "train.seed": ("count", "mocov2"),
    "train.checkpoint_every": ("count", "mocov2"), "train.knn_every": ("count", "mocov2"),
    "train.grad_clip": ("nonnegative", "mocov2"), "backbone.width": ("size", "mocov2"),
    "optim.lr": ("positive", "mocov2"), "optim.weight_decay": ("nonnegative", "mocov2"),
    "optim.warmup_epochs": ("nonnegative", "mocov2"), "optim.final_lr_ratio": ("fraction", "mocov2"),
    "optim.momentum": ("fraction", "mocov2"), "method.temperature": ("positive", "mocov2"),
    "method.projection_dim": ("size", "mocov2"), "method.queue_size": ("size", "mocov2"),
    "method.momentum": ("fraction", "mocov2"), "method.epsilon": ("positive", "swav"),
    "method.prototypes": ("size", "swav"), "method.sinkhorn_iterations": ("size", "swav"),
    "method.queue_length": ("count", "swav"), "method.base_momentum": ("fraction", "byol"),
    "method.label_smoothing": ("fraction", "supervised"),
}


@st.composite
def bad_numeric(draw):
    key = draw(st.sampled_from(sorted(NUMERIC)))
    kind, method = NUMERIC[key]
    return key, method, draw(_bad(kind))


def _layer(key: str, method: str, value) -> dict:
    section, field = key.split(".")
    layer = {"method": {"name": method}, section: {field: value}}
    if section == "method":
        layer["method"] = {"name": method, field: value}
    return layer


@HYPOTHESIS
@given(bad_numeric())
def test_resolve_config_names_the_bad_numeric_key(case):
    key, method, value = case
    with pytest.raises(ValueError) as error:
        resolve_config(_layer(key, method, value))
    assert str(error.value).startswith(f"{key}: expected "), str(error.value)


@HYPOTHESIS
@given(bad_numeric())
def test_a_yaml_config_with_a_bad_number_is_one_line_before_any_work(case):
    key, method, value = case
    with tempfile.TemporaryDirectory() as tmp, _no_training():
        path = Path(tmp) / "cfg.yaml"
        path.write_text(yaml.safe_dump(_layer(key, method, value)))
        with pytest.raises(ValueError, match=f"^{key}: expected "):
            resolve_config(load_yaml(path))
        err = _cli_error(["pretrain", "--corpus", "synthetic", "--config", str(path), "--output", f"{tmp}/run"])
        assert err.startswith(f"contrasting pretrain: error: {key}: expected ") and "\n" not in err
        assert sorted(os.listdir(tmp)) == ["cfg.yaml"]


def _cli_error(argv: list[str]) -> str:
    import io

    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(argv) == 2
    return err.getvalue().strip()


RAW_BAD = ["0", "-1", ".nan", ".inf", "-.inf", "nan", "inf", "1e400", "abc", "[1, 2]", "{a: 1}", "true", "~", "-0.5"]


@HYPOTHESIS
@given(st.sampled_from(["data.image_size", "train.epochs", "train.batch_size", "backbone.width", "optim.lr",
                        "method.temperature", "method.queue_size"]),
       st.sampled_from(RAW_BAD))
def test_overrides_with_bad_values_name_the_key(key, raw):
    if raw == "~" and key == "data.image_size":
        return  # null is image_size's documented default (the recipe's size)
    with pytest.raises(ValueError, match=f"^{key}: expected "):
        resolve_config({"method": {"name": "mocov2"}}, parse_override(f"{key}={raw}"))


@HYPOTHESIS
@given(st.sampled_from(["data", "train"]), st.from_regex(r"[a-z][a-z_]{0,14}", fullmatch=True), st.integers())
def test_unknown_fields_are_named(section, field, value):
    valid = {f for f in (DataSection if section == "data" else TrainSection).__dataclass_fields__}
    if field in valid:
        return
    with pytest.raises(ValueError, match=f"unknown {section} field '{field}'; valid {section} fields"):
        resolve_config({section: {field: value}})


@HYPOTHESIS
@given(st.sampled_from(["method", "backbone", "optim", "data", "train", "deepspeed"]),
       st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.booleans()))
def test_sections_of_the_wrong_type_are_named(section, value):
    if value in (None, 0, "", [], False):  # an empty section is the defaults
        return
    with pytest.raises(ValueError, match=f"^{section}: expected a mapping"):
        resolve_config({section: value})


@HYPOTHESIS
@given(st.sampled_from([("backbone", "small_stem"), ("train", "progress"), ("train", "resume"),
                        ("data", "corpus"), ("train", "precision"), ("train", "output_dir"), ("data", "options"),
                        ("train", "export_steps"), ("data", "executor")]),
       st.one_of(st.integers(), st.floats(allow_nan=True), st.lists(st.booleans(), min_size=1, max_size=2)))
def test_wrong_types_are_named(field, value):
    section, name = field
    if name == "export_steps" and value == []:
        return
    with pytest.raises(ValueError, match=f"{section}.{name}: expected|unknown precision"):
        resolve_config({section: {name: value}})


def test_config_refusals_without_hypothesis():
    cases = [
        ({"train": {"epochs": 0}}, "train.epochs: expected an integer >= 1, got 0"),
        ({"data": {"image_size": -3}}, "data.image_size: expected an integer >= 1, got -3"),
        ({"optim": {"lr": math.inf}}, "optim.lr: expected a finite number > 0, got inf"),
        ({"optim": {"name": "adamw", "betas": [0.9, 1.0]}}, "optim.betas: expected two numbers in [0, 1)"),
        ({"method": {"name": "swav", "assign_views": 1}}, "method.assign_views: expected a list of integers >= 0"),
        ({"method": {"name": "supervised", "num_classes": 1}}, "method.num_classes: expected an integer >= 2"),
        ({"train": {"export_steps": [0, 5]}}, "train.export_steps: expected a list of integers >= 1"),
        ({"train": {"max_steps": 2.5}}, "train.max_steps: expected an integer >= 1, got 2.5"),
        ({"data": {"executor": "gpu"}}, "unknown data executor 'gpu'"),
        ({"train": {"grad_clip": -1}}, "train.grad_clip: expected a finite number >= 0, got -1"),
        ({"method": {"name": "simclr", "temperature": "0.1x"}}, "method.temperature: expected a finite number > 0"),
    ]
    for layer, message in cases:
        with pytest.raises(ValueError) as error:
            resolve_config(layer)
        assert str(error.value).startswith(message), str(error.value)
    assert resolve_config({"data": {"image_size": None}, "train": {"max_steps": None}}).data.image_size is None


def test_recipe_options_the_recipe_does_not_take_are_named():
    """The data package's recipe registry owns every recipe, "supervised" included: an option its factory does
    not take is a ValueError naming ``data.options``; an unknown recipe lists the registered ones."""
    from contrasting.encoders.training.data import make_recipe

    assert make_recipe("supervised", 32, {"scale": (0.3, 1.0)}).views[0].scale == (0.3, 1.0)
    assert [v.size for v in make_recipe("swav", 32, {}).views] == [32, 14]
    with pytest.raises(ValueError, match=r"^data.options: .*unexpected keyword argument 'jitter'"):
        make_recipe("supervised", 32, {"jitter": 0.4})
    with pytest.raises(ValueError, match="supervised"):
        make_recipe("nope", 32, {})
