"""The packages' public functions refuse bad input with an error that names the argument and what was expected —
at least ten bad inputs each for the study's entry points beyond the command line (the losses' own argument checks
are in tests/losses/test_infonce_errors.py, configs in tests/encoders/test_bad_inputs.py, results tables in
tests/eval/test_bad_inputs.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from contrasting.encoders import build_backbone, build_method
from contrasting.eval import analyze, run_cell
from tests.eval.grid_simulator import simulate


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"name": "resnet19"}, "resnet19"),
    ({"name": ""}, "''"),
    ({"name": "resnet18", "width": 0}, "width"),
    ({"name": "resnet18", "width": -8}, "width"),
    ({"name": "resnet18", "width": 2.5}, "width"),
    ({"name": "resnet18", "small_stem": "yes"}, "small_stem"),
    ({"name": "resnet18", "colour": 3}, "colour"),
    ({"name": None}, "None"),
    ({"name": 18}, "18"),
    ({"name": "resnet18", "width": float("nan")}, "width"),
])
def test_build_backbone_names_the_bad_argument(kwargs, words):
    name = kwargs.pop("name")
    with pytest.raises((ValueError, TypeError, KeyError)) as refused:
        build_backbone(name, **kwargs)
    assert words in str(refused.value)


@pytest.mark.parametrize(("name", "options", "words"), [
    ("mocov3", {}, "mocov3"),
    ("", {}, "''"),
    ("mocov2", {"queue_size": 0}, "queue_size"),
    ("mocov2", {"temperature": 0}, "temperature"),
    ("mocov2", {"temperature": -1.0}, "temperature"),
    ("mocov2", {"momentum": 1.5}, "momentum"),
    ("swav", {"prototypes": 0}, "prototypes"),
    ("simclr", {"temperature": float("nan")}, "temperature"),
    ("simclr", {"frobnicate": 1}, "frobnicate"),
    ("byol", {"projection_dim": 0}, "projection_dim"),
    ("pirl", {"corpus_size": 1}, "corpus_size"),
    ("pirl", {"corpus_size": 64, "num_negatives": 0}, "num_negatives"),
])
def test_build_method_names_the_bad_option(name, options, words):
    with pytest.raises((ValueError, TypeError, KeyError)) as refused:
        build_method(name, build_backbone("resnet18", small_stem=True, width=8), options)
    assert words in str(refused.value)


def _table() -> pd.DataFrame:
    import numpy as np

    return simulate(np.random.default_rng(0))


def _drop(column):
    return lambda t: t.drop(columns=[column])


def _set(column, value, row=0):
    def change(t):
        t = t.copy()
        t[column] = t[column].astype(object)
        t.loc[t.index[row], column] = value
        return t
    return change


@pytest.mark.parametrize(("damage", "words"), [
    (_drop("encoder"), "encoder"),
    (_drop("task"), "task"),
    (_drop("value"), "value"),
    (_drop("baseline"), "baseline"),
    (_set("value", "high"), "value"),
    (_set("level", "voxel"), "level"),
    (_set("kind", "aesthetic"), "kind"),
    (_set("higher_is_better", "maybe"), "higher_is_better"),
    (_set("role", "teacher"), "role"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "duplicate"),
    (lambda t: t.iloc[0:0], "no rows"),
])
def test_analyze_names_the_bad_row_or_column(damage, words):
    with pytest.raises(ValueError) as refused:
        analyze(damage(_table()))
    assert words in str(refused.value).lower()


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"task": "no-such-task"}, "no-such-task"),
    ({"hparams": [{"learning_rate": 1}]}, "learning_rate"),
    ({"hparams": {"epochs": 0}}, "epochs"),
    ({"hparams": {"lr": -1.0}}, "lr"),
    ({"hparams": {"decay": "sometimes"}}, "decay"),
    ({"feature_cache": "sometimes"}, "feature_cache"),
    ({"image_size": 0}, "image_size"),
    ({"epochs": 0}, "epochs"),
    ({"encoder": "/no/such/checkpoint.pt"}, "/no/such/checkpoint.pt"),
    ({"encoder": "resnet"}, "resnet"),
    ({"num_workers": -1}, "num_workers"),
])
def test_run_cell_refuses_before_training(world_root_for_public, kwargs, words):
    args = {"encoder": "random:resnet18", "task": "shapes-digit", "data_root": world_root_for_public,
            "image_size": 32, **kwargs}
    with pytest.raises((ValueError, KeyError, FileNotFoundError)) as refused:
        run_cell(args.pop("encoder"), args.pop("task"), **args)
    assert words in str(refused.value)


@pytest.fixture(scope="module")
def world_root_for_public(tmp_path_factory):
    builtin = pytest.importorskip("contrasting.data.builtin")
    root = tmp_path_factory.mktemp("data")
    builtin.build_world(root, builtin.WorldConfig(scale=0.05, corpora=(), gallery=0), progress=False, workers=1)
    return root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    for c in ("a", "b"):
        (root / c).mkdir()
        for i in range(3):
            Image.new("RGB", (12, 10), (40 * i, 90, 30)).save(root / c / f"{i}.png")
    return root


@pytest.mark.parametrize(("recipe", "batch_size", "kwargs", "words"), [
    ("no-such-recipe", 4, {}, "no-such-recipe"),
    ("simclr", 0, {}, "batch_size"),
    ("simclr", -2, {}, "batch_size"),
    ("simclr", 2.5, {}, "batch_size"),
    ("simclr", "4", {}, "batch_size"),
    ("simclr", 4, {"backend": "opencl"}, "opencl"),
    ("simclr", 4, {"num_workers": -1}, "num_workers"),
    ("simclr", 4, {"frobnicate": True}, "frobnicate"),
    ("simclr", 4, {"seed": -1}, "seed"),
    ("simclr", 4, {"drop_last": "yes"}, "drop_last"),
    (None, 4, {}, "recipe"),
])
def test_make_loader_names_the_bad_argument(image_folder, recipe, batch_size, kwargs, words):
    from contrasting.data import ImageFolderSource, make_loader

    kwargs = {"backend": "torchvision", **kwargs}
    with pytest.raises((ValueError, TypeError, KeyError)) as refused:
        make_loader(recipe, ImageFolderSource(image_folder), batch_size, **kwargs)
    assert words in str(refused.value)


@pytest.mark.parametrize(("make", "words"), [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: root / "a" / "0.png", "not a directory"),
    (lambda root: root / "a", "no class"),
])
def test_image_folder_source_names_the_folder(image_folder, make, words):
    from contrasting.data import ImageFolderSource

    with pytest.raises((ValueError, FileNotFoundError, NotADirectoryError)) as refused:
        ImageFolderSource(make(image_folder))
    assert words in str(refused.value).lower()
