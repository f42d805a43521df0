"""The one atomic-write helper: a reader sees the old file or the new one; a failed write leaves no temp file."""

from __future__ import annotations

import os

import pytest

from contrasting.data.atomic import atomic_write_bytes, atomic_write_text


def test_replaces_the_whole_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("old")
    assert atomic_write_text(path, "new, complete") == path
    assert path.read_text() == "new, complete" and os.listdir(tmp_path) == ["results.csv"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "findings.json"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["findings.json"]
