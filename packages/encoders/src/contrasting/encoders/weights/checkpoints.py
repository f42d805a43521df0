"""Crash-safe DeepSpeed checkpoints: write into a staging folder, then rename (the commit), then point ``latest``.

Layout of ``<run>/checkpoints/``::

    latest                      the committed tag, replaced atomically (write a temporary file, fsync, rename)
    zero_to_fp32.py ...         DeepSpeed's recovery scripts
    step_00001000/              one committed checkpoint (a DeepSpeed tag folder):
        mp_rank_00_model_states.pt      module (with momentum encoder, queues: buffers), client state
        *_optim_states.pt               optimizer (ZeRO partitions: one file per rank)
        rng_rank<r>.pt                  each rank's torch / CUDA / numpy / python RNG states
        complete.json                   step, world size, run fingerprint, file sizes (written last, before
                                        the rename)
    .staging/step_00002000/     a checkpoint being written (never read; removed by the next save)
    .trash-step_00000000/       an old checkpoint being deleted (never read)

A kill at any moment leaves either the previous commit intact or the new one complete: the rename of the
staging folder and the replacement of ``latest`` are each atomic on one file system, and readers
(``latest_tag``) only accept committed folders whose ``complete.json`` matches the files. The folder
must be on a file system shared by all ranks (DeepSpeed's ZeRO files are written by every rank).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import shutil
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from contrasting.data.atomic import atomic_write_bytes, fsync_path

from ..distributed import DistInfo, barrier

LATEST = "latest"
STAGING = ".staging"
COMPLETE = "complete.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (incomplete, or from an incompatible run)."""


def tag_for(step: int) -> str:
    """The tag of the checkpoint taken after ``step`` optimizer steps."""
    return f"step_{step:08d}"


def rng_state() -> dict:
    """This process's RNG states — torch CPU, CUDA (all devices), numpy's global and python's ``random`` — as
    tensors and plain containers only, so that the file loads with ``torch.load(weights_only=True)``: numpy's
    (name, keys, pos, has_gauss, cached_gaussian) with its keys as an int64 tensor, python's as a list."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": [str(name), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
             "python": [int(version), torch.tensor(internal, dtype=torch.int64), gauss_next]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


_EXPECTED = "expected a file written by torch.save: a zip archive holding data.pkl, or the legacy pickle format"


def check_torch_file(path: str | os.PathLike, what: str = "checkpoint file") -> None:
    """Raise ``CheckpointError`` naming ``path`` unless it looks like a whole ``torch.save`` file: a zip archive
    with ``<name>/data.pkl`` (read from its central directory, so a truncated archive is refused), a pickle
    stream (torch's legacy format; ``torch.load`` itself refuses one that is not torch's or holds code), or a
    (pre-0.4) tar archive. Reads the file's head and, for a zip, its directory only; a missing file or a folder
    raises the ``OSError`` of opening it."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        raise CheckpointError(f"{path}: the {what} is empty ({_EXPECTED})")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise CheckpointError(f"{path}: the {what} is a corrupt zip archive ({error}; {_EXPECTED})") from None
        if not any(name.count("/") == 1 and name.endswith("/data.pkl") for name in names):
            raise CheckpointError(f"{path}: the {what} is a zip archive without data.pkl, not a PyTorch "
                                  f"checkpoint ({_EXPECTED})")
        return
    if head.startswith(b"PK"):
        raise CheckpointError(f"{path}: the {what} is a truncated or corrupt zip archive (no central directory; "
                              f"{_EXPECTED}); download or copy it again")
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):  # a pickle stream, protocol 2-5
        return
    if tarfile.is_tarfile(path):
        return
    kind = "text" if _is_text(head) else "data of another format"
    raise CheckpointError(f"{path}: the {what} holds {kind}, not a PyTorch checkpoint ({_EXPECTED})")


def _is_text(head: bytes) -> bool:
    return all(32 <= byte < 127 or byte in b"\t\n\r" for byte in head)


TORCH_LOAD_ERRORS = (RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError, zipfile.BadZipFile)
"""What ``torch.load`` raises on a damaged file besides ``pickle.UnpicklingError`` (torch 2.x serialization)."""


def load_safely(path: Path, what: str):
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never code from the file; a
    file that holds anything else raises ``CheckpointError`` naming it (a run directory is exactly what people
    download and share), and so does one that is empty, text, truncated or not a ``torch.save`` file
    (``check_torch_file``)."""
    try:
        check_torch_file(path, what)
        return torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except pickle.UnpicklingError as error:
        raise CheckpointError(f"{path}: the {what} holds objects other than tensors and plain containers "
                              f"({str(error).splitlines()[0][:200]}); refusing to unpickle it, which could run "
                              "code") from None
    except TORCH_LOAD_ERRORS as error:
        raise CheckpointError(f"{path}: the {what} is not a readable checkpoint file "
                              f"({(str(error).splitlines() or [type(error).__name__])[0][:200]})") from None


def _files_manifest(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != COMPLETE}


class CheckpointManager:
    """Saves and finds checkpoints of one run in ``directory`` (module docstring); ``keep`` newest are kept."""

    def __init__(self, directory: str | Path, info: DistInfo, keep: int = 2):
        self.directory = Path(directory)
        self.info = info
        self.keep = max(1, keep)

    def is_complete(self, tag: str) -> bool:
        """True when ``tag`` is a committed folder whose files match its ``complete.json``."""
        folder = self.directory / tag
        try:
            record = json.loads((folder / COMPLETE).read_text())
        except (OSError, ValueError):
            return False
        return record.get("files") == _files_manifest(folder)

    def latest_tag(self) -> str | None:
        """The tag to resume from: ``latest`` if it names a complete checkpoint, else the newest complete one."""
        try:
            tag = (self.directory / LATEST).read_text().strip()
        except OSError:
            tag = ""
        if tag and self.is_complete(tag):
            return tag
        tags = sorted((p.name for p in self.directory.glob("step_*") if p.is_dir()), reverse=True)
        return next((t for t in tags if self.is_complete(t)), None)

    def record(self, tag: str) -> dict:
        """The ``complete.json`` of a committed checkpoint."""
        return json.loads((self.directory / tag / COMPLETE).read_text())

    def save(self, engine, step: int, client_state: dict, meta: dict | None = None) -> str:
        """Checkpoint ``engine`` after ``step`` steps (collective: every rank calls it); returns the tag.

        ``meta`` (JSON data) goes into ``complete.json``, readable without loading the checkpoint.
        Nothing is written when that tag is already committed (same step, same state).
        """
        tag = tag_for(step)
        if (self.directory / tag).is_dir() and self.is_complete(tag):
            return tag
        staging = self.directory / STAGING
        if self.info.is_main:
            shutil.rmtree(staging / tag, ignore_errors=True)
            staging.mkdir(parents=True, exist_ok=True)
        barrier(self.info)
        engine.save_checkpoint(str(staging), tag=tag, client_state=client_state, save_latest=False)
        torch.save(rng_state(), staging / tag / f"rng_rank{self.info.rank}.pt")
        barrier(self.info)
        if self.info.is_main:
            folder = staging / tag
            for p in folder.rglob("*"):
                if p.is_file():
                    fsync_path(p)
            record = {"format_version": FORMAT_VERSION, "step": step, "world_size": self.info.world_size,
                      "time": time.time(), "meta": meta or {}, "files": _files_manifest(folder)}
            atomic_write_bytes(folder / COMPLETE, json.dumps(record, indent=1).encode())
            if (self.directory / tag).exists():  # an uncommitted leftover of the same tag
                shutil.rmtree(self.directory / tag)
            os.replace(folder, self.directory / tag)  # the commit
            fsync_path(self.directory)
            for script in staging.glob("*.py"):  # DeepSpeed's recovery scripts (zero_to_fp32.py) go beside the tags
                os.replace(script, self.directory / script.name)
            with contextlib.suppress(OSError):
                staging.rmdir()  # only when empty
            atomic_write_bytes(self.directory / LATEST, tag.encode())
            self._prune(tag)
        barrier(self.info)
        return tag

    def _prune(self, newest: str) -> None:
        tags = sorted(p.name for p in self.directory.glob("step_*") if p.is_dir() and p.name != newest)
        for old in tags[: max(0, len(tags) - (self.keep - 1))]:
            trash = self.directory / f".trash-{old}"
            os.replace(self.directory / old, trash)  # atomic: readers never see half a folder
            shutil.rmtree(trash, ignore_errors=True)
        for leftover in self.directory.glob(".trash-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def load(self, engine, tag: str) -> dict:
        """Restore ``engine`` (module, buffers, optimizer, step) and this rank's RNG from ``tag``.

        Returns the client state; a checkpoint written by another number of processes raises ``CheckpointError``.
        """
        record = self.record(tag)
        if record["world_size"] != self.info.world_size:
            raise CheckpointError(f"{self.directory / tag}: written by {record['world_size']} processes, this run has "
                                  f"{self.info.world_size}; resume with the same number of processes")
        for states in sorted((self.directory / tag).rglob("*.pt")):
            load_safely(states, "checkpoint file")  # DeepSpeed unpickles fully below: only files that are data
        path, client_state = engine.load_checkpoint(str(self.directory), tag=tag, load_module_strict=True,
                                                    load_optimizer_states=True, load_lr_scheduler_states=False)
        if path is None:
            raise CheckpointError(f"{self.directory / tag}: DeepSpeed could not load this checkpoint")
        rng_file = self.directory / tag / f"rng_rank{self.info.rank}.pt"
        set_rng_state(load_safely(rng_file, "RNG state"))
        return client_state or {}
