"""Build (or reuse) a built-in world on disk: plan → parallel generation → lists → gallery → manifest → rename.

Cache. ``<root>/world-<key>/`` with ``key`` = the first 16 hex digits of sha256 over the parameters (FORMAT,
VERSION, the :class:`WorldConfig` and every selected entry's data fields). ``root`` is the argument, else
``$CONTRASTING_DATA``, else ``~/.cache/contrasting/builtin``. Everything is written into
``<root>/.tmp-world-<key>-<nonce>/``; ``manifest.json`` is written last and the folder is then renamed into place
(an atomic rename on one file system). A folder is reused only when its manifest is valid: same format, version
and key, ``complete``, and the sha256 of its sorted file list equals the recorded one; any other
``world-<key>`` folder is removed and regenerated. Temporary folders of dead builds on this host are removed.

Determinism. Item i of split s of entry e is rendered from ``default_rng([seed, crc32(e), crc32(s), 0, i])`` and
the split's label order from ``default_rng([seed, crc32(e), crc32(s), 1, 0])``, so the bytes depend on neither
the number of workers nor the chunking. (Bytes are identical for identical numpy, Pillow and zlib versions; the
manifest records them.)
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
import secrets
import shutil
import socket
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from contrasting.data.atomic import atomic_write_text, fsync_path
from contrasting.data.builtin.gallery import write_gallery
from contrasting.data.builtin.layout import DEPTH_SCALE, split_folders, write_extra, write_list, write_sample
from contrasting.data.builtin.registry import (
    KINDS,
    CorpusSpec,
    SplitContext,
    TaskSpec,
    class_names,
    entry_parameters,
    get_corpus,
    get_task,
    has_item_labels,
    list_corpora,
    list_tasks,
)
from contrasting.data.builtin.scene import SceneSpec

FORMAT = "contrasting-builtin-world"
VERSION = 1  # bump whenever the generator's output for the same parameters changes
ENV_ROOT = "CONTRASTING_DATA"
DEFAULT_ROOT = Path("~/.cache/contrasting/builtin")
MANIFEST = "manifest.json"
OWNER = ".owner.json"  # host and pid of the process writing a temporary folder (removed before the manifest)
CHUNK = 100  # items per worker job: small enough to balance 2 workers, large enough to amortise the pickling
ITEM_STREAM, LABEL_STREAM = 0, 1
# fork shares the already-imported registry with the workers at no cost (like torch's DataLoader on Linux);
# elsewhere the workers import it.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world's bytes: the seed, the scene distribution, a size ``scale`` applied
    to every corpus and split (at least one item per class is kept), the selected ``corpora``/``tasks`` (None =
    all registered) and the number of ``gallery`` items per contact sheet (0 = no gallery)."""

    seed: int = 0
    scene: SceneSpec = field(default_factory=SceneSpec)
    scale: float = 1.0
    corpora: tuple[str, ...] | None = None
    tasks: tuple[str, ...] | None = None
    gallery: int = 32

    def __post_init__(self):
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected a non-negative int, got {self.seed!r}")
        if not self.scale > 0:
            raise ValueError(f"scale: expected > 0, got {self.scale}")
        for name in self.corpora or ():
            get_corpus(name)
        for name in self.tasks or ():
            get_task(name)

    def selected_corpora(self) -> list[CorpusSpec]:
        """The corpora this world holds, in registry order."""
        names = list_corpora() if self.corpora is None else self.corpora
        return [get_corpus(n) for n in names]

    def selected_tasks(self) -> list[TaskSpec]:
        """The tasks this world holds, in registry order."""
        names = list_tasks() if self.tasks is None else self.tasks
        return [get_task(n) for n in names]


@dataclass(frozen=True)
class SplitFiles:
    """One split on disk: ``root`` its folder (an ImageFolder root for the image-folder layout), ``list_file``
    its list, ``layout``, ``size``, ``classes`` and per-class ``counts`` (None without classes), and ``extra``
    the CSV of per-item numbers (view pairs only)."""

    root: Path
    list_file: Path
    layout: str
    size: int
    classes: tuple[str, ...] | None
    counts: tuple[int, ...] | None
    extra: Path | None = None


@dataclass(frozen=True)
class World:
    """A complete built-in world: its folder, cache key, configuration, the corpora (name → their single
    split), the tasks (name → split → files), the gallery sheets and the parsed manifest."""

    path: Path
    key: str
    config: WorldConfig
    corpora: dict[str, SplitFiles]
    tasks: dict[str, dict[str, SplitFiles]]
    gallery: dict[str, Path]
    manifest: dict


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """Cache root: ``root``, else ``$CONTRASTING_DATA``, else ``~/.cache/contrasting/builtin`` (expanded)."""
    chosen = root if root is not None else os.environ.get(ENV_ROOT) or DEFAULT_ROOT
    return Path(chosen).expanduser()


def world_parameters(config: WorldConfig) -> dict:
    """JSON-ready parameters that determine the world's bytes (the cache key hashes them)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": json.loads(json.dumps(asdict(config))),
        "corpora": [entry_parameters(c) for c in config.selected_corpora()],
        "tasks": [entry_parameters(t) for t in config.selected_tasks()],
    }


def world_key(config: WorldConfig) -> str:
    """16 hex digits of sha256 over the canonical JSON of :func:`world_parameters`."""
    text = json.dumps(world_parameters(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def split_sizes(entry: CorpusSpec | TaskSpec, config: WorldConfig) -> list[tuple[str, int]]:
    """(split, size) after ``config.scale``; a classified split keeps at least one item per class."""
    classes = class_names(entry, config.scene)
    minimum = len(classes) if has_item_labels(entry) else 1
    return [(split, max(minimum, round(n * config.scale))) for split, n in entry.splits]


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode())


def item_rng(seed: int, entry: str, split: str, index: int) -> np.random.Generator:
    """The generator of one item: independent of workers, chunking and the other entries."""
    return np.random.default_rng([seed, _stable_id(entry), _stable_id(split), ITEM_STREAM, index])


def split_labels(entry: CorpusSpec | TaskSpec, config: WorldConfig, split: str, size: int) -> list[int | None]:
    """Pre-assigned labels of a split: exact profile counts in a seeded random order (None for pixel tasks)."""
    if not has_item_labels(entry):
        return [None] * size
    counts = entry.profile.counts(size, len(class_names(entry, config.scene)))
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng([config.seed, _stable_id(entry.name), _stable_id(split), LABEL_STREAM, 0])
    return [int(v) for v in labels[rng.permutation(size)]]


@dataclass(frozen=True)
class _Job:
    section: str
    name: str
    split: str
    start: int
    labels: tuple
    seed: int
    scene: SceneSpec
    entry_dir: str
    classes: tuple[str, ...] | None


def _entry(section: str, name: str) -> CorpusSpec | TaskSpec:
    return get_corpus(name) if section == "corpora" else get_task(name)


def _generate(job: _Job) -> tuple[list, list, float]:
    """Worker: render and write one chunk; returns (list rows, extra rows, CPU seconds)."""
    started = time.process_time()
    entry = _entry(job.section, job.name)
    context = SplitContext(job.seed, job.split)
    r = job.scene.resolution
    rows, extras = [], []
    for offset, label in enumerate(job.labels):
        index = job.start + offset
        sample = entry.sampler(item_rng(job.seed, job.name, job.split, index), job.scene, label, context)
        if sample.image.shape != (r, r, 3) or sample.image.dtype != np.uint8:
            raise ValueError(f"{job.name}: sampler returned {sample.image.dtype} {sample.image.shape}, "
                             f"expected uint8 {(r, r, 3)}")
        rows.append(write_sample(job.entry_dir, entry.kind, job.split, index, label, job.classes, sample))
        extras.append(sample.extra)
    return rows, extras, time.process_time() - started


class _Progress:
    """tqdm when it is installed (it is not a dependency), else a line on stderr every 10 %."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.bar, self.shown = total, 0, enabled, None, -1
        if enabled:
            try:
                from tqdm.auto import tqdm  # optional

                self.bar = tqdm(total=total, unit="item", desc="built-in world")
            except ImportError:
                pass

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and (tenth := 10 * self.done // max(self.total, 1)) > self.shown:
            self.shown = tenth
            print(f"[builtin] {self.done}/{self.total} items", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _plan(config: WorldConfig, folder: Path):
    """Entry records for the manifest and the worker jobs, creating every output folder."""
    records, jobs = {"corpora": {}, "tasks": {}}, []
    for section, entries in (("corpora", config.selected_corpora()), ("tasks", config.selected_tasks())):
        for entry in entries:
            rel = f"{section}/{entry.name}"
            classes = class_names(entry, config.scene)
            record = entry_parameters(entry)
            record.update(path=rel, layout=KINDS[entry.kind].layout, kind=entry.kind, target=KINDS[entry.kind].target,
                          classes=None if classes is None else list(classes), splits={})
            if isinstance(entry, TaskSpec):
                record["higher_is_better"] = entry.higher_is_better
            for split, size in split_sizes(entry, config):
                for sub in split_folders(record["layout"], split, classes):
                    (folder / rel / sub).mkdir(parents=True, exist_ok=True)
                labels = split_labels(entry, config, split, size)
                counts = None if labels[0] is None else np.bincount(labels, minlength=len(classes)).tolist()
                record["splits"][split] = {"root": f"{rel}/{split}", "list": f"{rel}/{split}.txt", "size": size,
                                           "counts": counts}
                for start in range(0, size, CHUNK):
                    jobs.append(_Job(section, entry.name, split, start, tuple(labels[start:start + CHUNK]),
                                     config.seed, config.scene, str(folder / rel), classes))
            records[section][entry.name] = record
    return records, jobs


def _run(jobs: list[_Job], workers: int, progress: _Progress) -> tuple[list, float]:
    """Run every job (in this process when workers <= 1); returns ([result per job, in job order], CPU seconds)."""
    results = [None] * len(jobs)
    if workers <= 1:
        for i, job in enumerate(jobs):
            results[i] = _generate(job)
            progress.update(len(job.labels))
    else:
        context = multiprocessing.get_context(START_METHOD)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_generate, job): i for i, job in enumerate(jobs)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                progress.update(len(jobs[futures[future]].labels))
    return results, sum(seconds for _, _, seconds in results)


def file_list_digest(folder: Path) -> tuple[int, str]:
    """(number of files, sha256 of their sorted relative POSIX paths) under ``folder``, manifest excluded."""
    paths = []
    for dirpath, _, filenames in os.walk(folder):
        rel = Path(dirpath).relative_to(folder).as_posix()
        paths.extend(name if rel == "." else f"{rel}/{name}" for name in filenames)
    paths = sorted(p for p in paths if p != MANIFEST)
    return len(paths), hashlib.sha256("\n".join(paths).encode()).hexdigest()


def _versions() -> dict:
    import PIL

    return {"python": platform.python_version(), "numpy": np.__version__, "pillow": PIL.__version__,
            "zlib": zlib.ZLIB_RUNTIME_VERSION}


def _write_world(folder: Path, config: WorldConfig, key: str, progress: bool, workers: int) -> dict:
    started = time.perf_counter()
    folder.mkdir(parents=True)
    (folder / OWNER).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    records, jobs = _plan(config, folder)
    bar = _Progress(sum(len(j.labels) for j in jobs), progress)
    try:
        results, cpu = _run(jobs, workers, bar)
    finally:
        bar.close()
    by_split: dict[tuple[str, str, str], list] = {}
    for job, result in zip(jobs, results, strict=True):  # jobs are in index order within a split
        by_split.setdefault((job.section, job.name, job.split), []).append(result)
    for section in records:
        for name, record in records[section].items():
            for split, info in record["splits"].items():
                chunks = by_split[(section, name, split)]
                write_list(folder / info["list"], [row for rows, _, _ in chunks for row in rows])
                extras = [e for _, chunk_extras, _ in chunks for e in chunk_extras]
                if extras and extras[0]:
                    info["extra"] = f"{record['path']}/{split}_extra.csv"
                    write_extra(folder / info["extra"], extras)
    generated = time.perf_counter() - started
    manifest = {"format": FORMAT, "version": VERSION, "key": key, "parameters": world_parameters(config),
                "depth_scale": DEPTH_SCALE, **records, "gallery": {}}
    if config.gallery > 0:
        manifest["gallery"] = write_gallery(folder, manifest, config.scene.depth[0], config.gallery)
    (folder / OWNER).unlink()
    count, digest = file_list_digest(folder)
    manifest.update(
        files={"count": count, "sha256": digest},
        timing={"generate_s": round(generated, 3), "total_s": round(time.perf_counter() - started, 3),
                "worker_cpu_s": round(cpu, 3), "workers": workers, "cpu_count": os.cpu_count(),
                "loadavg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None},
        versions=_versions(), created=datetime.now(timezone.utc).isoformat(timespec="seconds"), complete=True)
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))  # written last
    return manifest


def read_manifest(folder: str | os.PathLike, key: str | None = None) -> dict | None:
    """The manifest of a complete world folder, or None when it is missing, unreadable, of another format,
    version or key (if given), not complete, or when the folder's file list no longer matches it."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        return None
    if manifest.get("complete") is not True or (key is not None and manifest.get("key") != key):
        return None
    files = manifest.get("files") or {}
    if (files.get("count"), files.get("sha256")) != file_list_digest(folder):
        return None
    return manifest


def _split_files(folder: Path, record: dict, split: str) -> SplitFiles:
    info = record["splits"][split]
    classes = record.get("classes")
    return SplitFiles(root=folder / info["root"], list_file=folder / info["list"], layout=record["layout"],
                      size=info["size"], classes=None if classes is None else tuple(classes),
                      counts=None if info["counts"] is None else tuple(info["counts"]),
                      extra=folder / info["extra"] if info.get("extra") else None)


def _world(folder: Path, config: WorldConfig, manifest: dict) -> World:
    corpora = {name: _split_files(folder, r, next(iter(r["splits"]))) for name, r in manifest["corpora"].items()}
    tasks = {name: {s: _split_files(folder, r, s) for s in r["splits"]} for name, r in manifest["tasks"].items()}
    gallery = {name: folder / rel for name, rel in manifest["gallery"].items()}
    return World(path=folder, key=manifest["key"], config=config, corpora=corpora, tasks=tasks, gallery=gallery,
                 manifest=manifest)


def _remove_dead_temporaries(root: Path) -> None:
    """Remove ``.tmp-world-*`` folders whose writer was a process of this host that no longer runs."""
    host = socket.gethostname()
    for tmp in root.glob(".tmp-world-*"):
        try:
            owner = json.loads((tmp / OWNER).read_text())
        except (OSError, ValueError):
            continue  # being created right now, or not ours: leave it
        if owner.get("host") != host:
            continue
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (PermissionError, KeyError, ValueError, TypeError):
            continue


def build_world(root: str | os.PathLike | None = None, config: WorldConfig | None = None, progress: bool = True,
                *, workers: int | None = None, force: bool = False) -> World:
    """Return the world for ``config`` (default :class:`WorldConfig`), generating it if no valid copy is cached.

    ``root``: cache root (see :func:`resolve_root`); ``progress``: a progress bar (tqdm if installed) on stderr;
    ``workers``: generator processes (default: min(4, CPU count); 1 = in this process); ``force``: regenerate
    even when a valid copy exists. An invalid or partial ``world-<key>`` folder is removed and regenerated. Safe
    against concurrent builders of the same key: the first complete rename wins, the others reuse it.
    """
    config = config if config is not None else WorldConfig()
    root = resolve_root(root)
    key = world_key(config)
    final = root / f"world-{key}"
    if not force and (manifest := read_manifest(final, key)) is not None:
        return _world(final, config, manifest)
    root.mkdir(parents=True, exist_ok=True)
    _remove_dead_temporaries(root)
    workers = min(4, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    if final.exists():  # invalid, partial or forced: never reused (re-checked: a concurrent builder may have won)
        if not force and (manifest := read_manifest(final, key)) is not None:
            return _world(final, config, manifest)
        shutil.rmtree(final)
    tmp = root / f".tmp-world-{key}-{secrets.token_hex(6)}"
    try:
        _write_world(tmp, config, key, progress, workers)
        try:
            os.rename(tmp, final)
        except OSError:  # another builder renamed first: keep its copy if complete, else replace it
            if read_manifest(final, key) is None:
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
        fsync_path(root)  # the rename survives a power cut
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    manifest = read_manifest(final, key)
    if manifest is None:
        raise RuntimeError(f"built-in world at {final} failed validation right after it was written")
    return _world(final, config, manifest)
