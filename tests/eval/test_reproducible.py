"""The same command on the same machine gives the same science: the tiny demo run twice from scratch produces
bit-identical pre-trained backbones and an identical results table and findings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contrasting.eval import demo

pytest.importorskip("deepspeed")
torch = pytest.importorskip("torch")


def _run(out: Path, data: Path) -> dict:
    argv = ["--preset", "tiny", "--out", str(out), "--data-root", str(data), "--workers", "2", "--no-progress"]
    assert demo.demo_main(argv) == 0
    return json.loads((out / demo.SUMMARY).read_text())


def _backbones(summary: dict) -> dict[str, dict]:
    return {name: torch.load(Path(d) / "backbone.pt", map_location="cpu", weights_only=True)
            for name, d in summary["pretrain"]["runs"].items()}


def _same_tensors(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_tensors, a, b))
    return a == b


@pytest.mark.slow
def test_the_tiny_demo_twice_is_bit_identical(tmp_path, capsys):
    data = tmp_path / "data"
    first, second = _run(tmp_path / "one", data), _run(tmp_path / "two", data)
    capsys.readouterr()
    one, two = _backbones(first), _backbones(second)
    assert one.keys() == two.keys() and one
    for name in one:
        assert _same_tensors(one[name], two[name]), f"{name}: the pre-trained backbone differs between two runs"
    table = [(tmp_path / run / "report" / "results.csv").read_text() for run in ("one", "two")]
    assert table[0] == table[1].replace(str(tmp_path / "two"), str(tmp_path / "one"))
    assert first["findings"] == second["findings"]
