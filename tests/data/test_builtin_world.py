"""The world on disk: byte determinism (also across worker counts), cache reuse and invalidation, atomic
publication, layouts and labels as written, class balance of the corpora, split disjointness, gallery, CLI."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from contrasting.data.builtin import (
    BACKGROUND_DEPTH,
    CORPORA,
    ENV_ROOT,
    TASKS,
    ClassProfile,
    SceneSpec,
    WorldConfig,
    build_world,
    decode_depth,
    main,
    read_list,
    read_manifest,
    read_png,
    resolve_root,
    world_key,
)
from contrasting.data.builtin import build as build_module
from contrasting.data.builtin.entries import LT_C, digit_pool

SMALL = WorldConfig(scale=0.02, gallery=8)  # corpora 60 images, task splits 30/6/12 (at least one per class)
TINY = WorldConfig(scale=0.005, gallery=0)


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("cache"), SMALL, progress=False, workers=2)


def test_world_holds_every_entry_with_the_scaled_sizes(world):
    assert list(world.corpora) == list(CORPORA) and list(world.tasks) == list(TASKS)
    assert {f.size for f in world.corpora.values()} == {60}, "pre-training corpora have equal sizes"
    for name, splits in world.tasks.items():
        assert list(splits) == ["train", "val", "test"]
        n_classes = len(splits["train"].classes or ())
        for split, n in (("train", 30), ("val", 6), ("test", 12)):
            assert splits[split].size == max(n, n_classes if TASKS[name].kind.endswith("classification") else 1)
    assert world.path.name == f"world-{world_key(SMALL)}"
    assert read_manifest(world.path, world.key) == world.manifest


def test_image_folder_layout_matches_its_list(world):
    for files in [*world.corpora.values(), *(s for t in world.tasks.values() for s in t.values())]:
        rows = read_list(files.list_file)
        assert len(rows) == files.size
        if files.layout != "image-folder":
            continue
        folders = sorted(p.name for p in files.root.iterdir())
        assert folders == [f"{i:02d}_{c}" for i, c in enumerate(files.classes)], "sorted folder = class index"
        for path, label in rows:
            p = files.list_file.parent / path
            assert p.is_file() and p.parent.parent == files.root and folders.index(p.parent.name) == int(label)
        on_disk = [len(list((files.root / f).iterdir())) for f in folders]
        assert tuple(on_disk) == files.counts


def test_class_balance_of_shapes_vs_the_log_profile_of_shapes_lt(world):
    shapes, lt = world.corpora["shapes"], world.corpora["shapes-lt"]
    assert shapes.size == lt.size
    assert set(shapes.counts) == {10}, "balanced: 60 images over 6 classes"
    assert list(lt.counts) == ClassProfile("log", LT_C).counts(60, 6).tolist()
    assert list(lt.counts) == sorted(lt.counts, reverse=True) and lt.counts[0] >= 4 * lt.counts[-1]
    labels = Counter(int(label) for _, label in read_list(lt.list_file))
    assert [labels[k] for k in range(6)] == list(lt.counts)


def test_pixel_targets_on_disk(world):
    seg, fg, depth = (world.tasks[n]["val"] for n in ("shape-seg", "foreground", "depth"))
    for files, check in ((seg, lambda t: t.dtype == np.uint8 and t.max() <= 6 and (t > 0).any()),
                         (fg, lambda t: t.dtype == np.uint8 and set(np.unique(t)) <= {0, 1} and t.any()),
                         (depth, lambda t: t.dtype == np.uint16)):
        for image_path, target_path in read_list(files.list_file):
            folder = files.list_file.parent
            image, target = read_png(folder / image_path), read_png(folder / target_path)
            assert image.shape == (64, 64, 3) and target.shape == (64, 64) and check(target)
    for _, target_path in read_list(depth.list_file):
        d = decode_depth(read_png(depth.list_file.parent / target_path))
        assert d.max() == pytest.approx(BACKGROUND_DEPTH) and SMALL.scene.depth[0] - 1e-3 <= d.min() < 1


def test_camera_shift_pairs_on_disk_are_consistent_crops(world):
    files = world.tasks["camera-shift"]["train"]
    rows, offsets = read_list(files.list_file), read_list(files.extra)
    assert offsets[0] == ["dx", "dy"] and len(offsets) == len(rows) + 1
    for (a, b, label), (dx, dy) in zip(rows, offsets[1:], strict=True):
        a, b = read_png(files.list_file.parent / a), read_png(files.list_file.parent / b)
        dx, dy, label = int(dx), int(dy), int(label)
        assert [-dx, dx, -dy, dy][label] >= 4
        ya, xa = slice(max(dy, 0), 64 + min(dy, 0)), slice(max(dx, 0), 64 + min(dx, 0))
        yb, xb = slice(max(-dy, 0), 64 + min(-dy, 0)), slice(max(-dx, 0), 64 + min(-dx, 0))
        np.testing.assert_array_equal(a[ya, xa], b[yb, xb])


def test_splits_are_disjoint(world):
    for name, splits in world.tasks.items():
        seen: dict[str, str] = {}
        for split, files in splits.items():
            for row in read_list(files.list_file):
                digest = hashlib.sha256((files.list_file.parent / row[0]).read_bytes()).hexdigest()
                assert seen.setdefault(digest, split) == split, f"{name}: an image of {split} is also in {seen[digest]}"
    pools = [set(i for c in digit_pool(SMALL.seed, s) for i in c) for s in ("train", "val", "test")]
    assert not (pools[0] & pools[1] or pools[0] & pools[2] or pools[1] & pools[2])


def test_gallery_sheets_exist(world):
    assert set(world.gallery) == {f"corpus-{n}" for n in CORPORA} | {f"task-{n}" for n in TASKS}
    for path in world.gallery.values():
        sheet = read_png(path)
        assert sheet.ndim == 3 and sheet.shape[0] > 150 and sheet.shape[1] >= 480


def test_same_seed_same_bytes_for_any_worker_count(tmp_path):
    one = build_world(tmp_path / "a", TINY, progress=False, workers=1)
    two = build_world(tmp_path / "b", TINY, progress=False, workers=2)
    assert one.key == two.key
    a, b = _digests(one.path), _digests(two.path)
    assert a == b and len(a) == one.manifest["files"]["count"]
    other = build_world(tmp_path / "c", replace(TINY, seed=1), progress=False, workers=2)
    assert other.key != one.key
    c = _digests(other.path)
    shared = [k for k in a if k in c and k.startswith("tasks/depth/") and k.endswith(".png")]
    assert shared and all(c[k] != a[k] for k in shared), "another seed gives other images"


def test_cache_is_reused_and_parameters_change_the_folder(tmp_path, monkeypatch):
    first = build_world(tmp_path, TINY, progress=False, workers=1)

    def fail(*args, **kwargs):
        raise AssertionError("a valid cached world must not be regenerated")

    monkeypatch.setattr(build_module, "_write_world", fail)
    again = build_world(tmp_path, TINY, progress=False)
    assert again.path == first.path and again.manifest == first.manifest
    monkeypatch.undo()
    bigger = replace(TINY, scene=replace(TINY.scene, resolution=48), tasks=("count",), corpora=())
    other = build_world(tmp_path, bigger, progress=False, workers=1)
    assert other.path != first.path and first.path.exists()
    assert read_png(other.tasks["count"]["test"].root / "00_1" / os.listdir(
        other.tasks["count"]["test"].root / "00_1")[0]).shape == (48, 48, 3)


@pytest.mark.parametrize("damage", ["no-manifest", "incomplete", "missing-file", "extra-file", "other-version",
                                    "garbage"])
def test_a_damaged_world_is_never_reused(tmp_path, damage):
    config = replace(TINY, corpora=("textures",), tasks=("foreground",))
    world = build_world(tmp_path, config, progress=False, workers=1)
    manifest_path = world.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    before = _digests(world.path)
    if damage == "no-manifest":
        manifest_path.unlink()
    elif damage == "incomplete":
        manifest_path.write_text(json.dumps({**manifest, "complete": False}))
    elif damage == "missing-file":
        next(world.path.rglob("000000.png")).unlink()
    elif damage == "extra-file":
        (world.tasks["foreground"]["val"].root / "stray.png").write_bytes(b"x")
    elif damage == "other-version":
        manifest_path.write_text(json.dumps({**manifest, "version": -1}))
    else:
        manifest_path.write_text("{not json")
    assert read_manifest(world.path, world.key) is None
    rebuilt = build_world(tmp_path, config, progress=False, workers=1)
    assert rebuilt.path == world.path and read_manifest(rebuilt.path, rebuilt.key) is not None
    assert _digests(rebuilt.path) == before


def test_partial_and_dead_temporary_folders(tmp_path):
    config = replace(TINY, corpora=(), tasks=("count",))
    key = world_key(config)
    partial = tmp_path / f"world-{key}"  # e.g. copied half-way, or written by a buggy old version
    (partial / "tasks").mkdir(parents=True)
    (partial / "tasks" / "junk.png").write_bytes(b"junk")
    dead = tmp_path / f".tmp-world-{key}-deadbeef"
    dead.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (dead / ".owner.json").write_text(json.dumps({"host": build_module.socket.gethostname(),
                                                  "pid": int(proc.stdout)}))
    alive = tmp_path / f".tmp-world-{key}-cafef00d"
    alive.mkdir()
    (alive / ".owner.json").write_text(json.dumps({"host": build_module.socket.gethostname(), "pid": os.getpid()}))
    world = build_world(tmp_path, config, progress=False, workers=1)
    assert not (world.path / "tasks" / "junk.png").exists() and read_manifest(world.path, key) is not None
    assert not dead.exists(), "a temporary folder of a dead build is removed"
    assert alive.exists(), "a temporary folder of a running build is left alone"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("world-")) == [f"world-{key}"]


def test_failed_build_leaves_no_world(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(build_module, "write_gallery", broken)
    with pytest.raises(RuntimeError, match="boom"):
        build_world(tmp_path, replace(TINY, corpora=(), tasks=("count",), gallery=4), progress=False, workers=1)
    assert list(tmp_path.iterdir()) == [], "neither a world nor a temporary folder is left"


def test_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_ROOT, str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(ENV_ROOT)
    assert resolve_root() == Path("~/.cache/contrasting/builtin").expanduser()
    monkeypatch.setenv(ENV_ROOT, str(tmp_path / "env"))
    world = build_world(config=replace(TINY, corpora=(), tasks=("depth",)), progress=False, workers=1)
    assert world.path.parent == tmp_path / "env"


def test_config_validation():
    with pytest.raises(ValueError):
        WorldConfig(seed=-1)
    with pytest.raises(ValueError):
        WorldConfig(scale=0)
    with pytest.raises(KeyError):
        WorldConfig(tasks=("imagenet",))
    assert world_key(WorldConfig()) == world_key(WorldConfig(scene=SceneSpec()))
    assert world_key(WorldConfig()) != world_key(WorldConfig(scene=SceneSpec(min_visible=0.4)))


def test_cli_builds_and_prints_where(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "--scale", "0.005", "--corpora", "digits", "--tasks", "digit-cls",
                 "--gallery", "4", "--no-progress", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    world_dirs = [p for p in tmp_path.iterdir() if p.name.startswith("world-")]
    assert len(world_dirs) == 1 and str(world_dirs[0]) in out and "digit-cls" in out
    assert (world_dirs[0] / "gallery" / "task-digit-cls.png").is_file()


def test_module_entry_point_lists_the_registry():
    proc = subprocess.run([sys.executable, "-m", "contrasting.data.builtin", "--list"], capture_output=True,
                          text=True, check=True, timeout=120)
    for name in [*CORPORA, *TASKS]:
        assert name in proc.stdout


@pytest.mark.slow
def test_default_world_builds(tmp_path):
    world = build_world(tmp_path, progress=False)
    assert {f.size for f in world.corpora.values()} == {3000}
    assert all(s.size == n for t in world.tasks.values() for s, n in zip(t.values(), (1500, 300, 600), strict=True))
    print(f"default world: {world.manifest['timing']}")


def _build_and_report(root, queue):
    world = build_world(root, replace(TINY, corpora=("shapes",), tasks=()), progress=False, workers=1)
    queue.put(str(world.path))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_concurrent_builders_share_one_world(tmp_path):
    context = multiprocessing.get_context("fork")  # no re-import of torch (contrasting.data imports it eagerly)
    queue = context.Queue()
    procs = [context.Process(target=_build_and_report, args=(tmp_path, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    paths = {queue.get(timeout=120) for _ in procs}
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs) and len(paths) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(paths.pop()).name], "no temporary folder is left"
