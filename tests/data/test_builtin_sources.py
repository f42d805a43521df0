"""The built-in world's layouts are read by the data package's own sources (the real loading code).

Skipped while ``contrasting.data.sources`` does not exist yet (it is written concurrently); the view-pair list of
``camera-shift`` has no source there and is covered by test_builtin_world.py with the reference reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contrasting.data.builtin import WorldConfig, build_world, read_list

sources = pytest.importorskip(
    "contrasting.data.sources", reason="contrasting.data.sources is not written yet: layouts not checked against it"
)


def _path_and_label(sample):
    """(resolved path, label or None) of a source sample: a (path, label) tuple or an object with .path/.label."""
    if isinstance(sample, tuple | list):
        return Path(sample[0]).resolve(), (sample[1] if len(sample) > 1 else None)
    return Path(sample.path).resolve(), getattr(sample, "label", None)


def _pair(sample):
    """(resolved image path, resolved target path) of a pair-list sample."""
    if isinstance(sample, tuple | list):
        return Path(sample[0]).resolve(), Path(sample[1]).resolve()
    return Path(sample.image).resolve(), Path(sample.target).resolve()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    config = WorldConfig(scale=0.01, gallery=0, tasks=("shape-cls", "count", "shape-seg", "foreground", "depth"))
    return build_world(tmp_path_factory.mktemp("sources"), config, progress=False, workers=2)


def _expected(files):
    return {(files.list_file.parent / row[0]).resolve(): int(row[1]) for row in read_list(files.list_file)}


def test_image_folders_read_by_image_folder_source(world):
    for files in [*world.corpora.values(), world.tasks["shape-cls"]["train"], world.tasks["count"]["test"]]:
        source = sources.ImageFolderSource(files.root)
        assert len(source) == files.size == len(source.samples)
        got = dict(_path_and_label(s) for s in source.samples)
        assert {p: int(label) for p, label in got.items()} == _expected(files)


def test_list_files_read_by_file_list_source(world):
    for files in [world.corpora["shapes-lt"], world.tasks["count"]["val"]]:
        source = sources.FileListSource(files.list_file)
        assert len(source) == files.size
        got = dict(_path_and_label(s) for s in source.samples)
        assert {p: int(label) for p, label in got.items()} == _expected(files)
        rooted = sources.FileListSource(files.list_file, root=files.list_file.parent)
        assert [_path_and_label(s) for s in rooted.samples] == [_path_and_label(s) for s in source.samples]


@pytest.mark.parametrize("task", ["shape-seg", "foreground", "depth"])
def test_pair_lists_read_by_pair_list_source(world, task):
    for files in world.tasks[task].values():
        source = sources.PairListSource(files.list_file)
        assert len(source) == files.size
        want = [tuple((files.list_file.parent / p).resolve() for p in row) for row in read_list(files.list_file)]
        assert [_pair(s) for s in source.samples] == want
        assert all(image.is_file() and target.is_file() for image, target in want)


def test_written_file_lists_round_trip(world, tmp_path):
    files = world.tasks["count"]["train"]
    original = sources.FileListSource(files.list_file)
    out = tmp_path / "copy.txt"
    sources.write_file_list(out, original.samples)
    again = sources.FileListSource(out)
    assert [_path_and_label(s) for s in again.samples] == [_path_and_label(s) for s in original.samples]


@pytest.mark.parametrize(("task", "dtype"), [("shape-seg", "uint8"), ("foreground", "uint8"), ("depth", "uint16")])
def test_scan_accepts_every_image_and_target(world, task, dtype):
    catalog = sources.scan_source(sources.PairListSource(world.tasks[task]["val"].list_file), check="full")
    assert len(catalog) == world.tasks[task]["val"].size and not catalog.rejected
    assert catalog.target_dtype == dtype and not catalog.transcode.any(), "PNGs both executors decode natively"
    assert (catalog.sizes == 64).all()


def test_scan_of_an_image_folder_keeps_the_labels(world):
    files = world.corpora["textures"]
    catalog = sources.scan_source(sources.ImageFolderSource(files.root), check="full")
    assert len(catalog) == files.size and not catalog.transcode.any()
    assert sorted(catalog.labels.tolist()) == sorted(_expected(files).values())
