"""The report: built from a store, the HTML parses and is self-contained, every figure is a real PNG (inline
and on disk), Markdown and CSV exports agree with the table, and `contrasting report` runs."""

from __future__ import annotations

import base64
import csv
import html
import io
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from contrasting.eval.report import MAIN_FIGURE, build_report, report_main
from contrasting.eval.store import CellRecord, ResultStore, RunnerId

TASKS = {"shapes-shape": ("image", "semantic", "top1", True), "shapes-texture": ("image", "semantic", "top1", True),
         "shapes-count": ("image", "structural", "top1", True),
         "shapes-segmentation": ("pixel", "semantic", "miou", True),
         "shapes-depth": ("pixel", "structural", "l1", False)}


def fill_store(path: Path, seeds=(0, 1), failed: int = 1) -> Path:
    """A finished grid: SimCLR / MoCo v2 / SwAV on three corpora (a balanced/unbalanced pair among them), plus
    supervised and random, two seeds, one failed cell."""
    rng = np.random.default_rng(0)
    encoders = {}
    for m in ("simclr", "mocov2", "swav"):
        for corpus, bal in (("balanced", True), ("unbalanced", False), ("textures", None)):
            meta = {"method": m, "corpus": f"shapes-{corpus}", "epochs": 10, "corpus_size": 5000}
            if bal is not None:
                meta.update(balanced=bal, pair="shapes")
            encoders[f"{m}-{corpus}"] = meta
    encoders["supervised"] = {"method": "supervised", "supervised": True}
    encoders["random"] = {"method": "random", "random": True}
    cells, scores = [], {}
    for e, em in encoders.items():
        quality = 0.05 if em.get("random") else (0.9 if em.get("supervised") else rng.uniform(0.3, 0.7))
        for t, (lv, kind, metric, hib) in TASKS.items():
            tm = {"name": t, "level": lv, "kind": kind, "group": f"{lv} {kind}", "metric": metric,
                  "higher_is_better": hib, "similar_corpus": ["shapes-textures"] if t == "shapes-texture" else []}
            for s in seeds:
                v = quality * rng.uniform(0.8, 1.0) + 0.02 * rng.standard_normal()
                key = f"{e}|{t}|{s}"
                cells.append(CellRecord(key, e, t, "default", {}, s, em, tm, {"key": key}))
                scores[key] = (1.0 - v) if not hib else v
    with ResultStore(path) as store:
        store.register("h1", "report-test", '{"hparams": {"default": {}}, "analysis": {}}', cells)
        me = RunnerId.current()
        for i, c in enumerate(cells):
            store.claim_keys(me, [c.key], lease_s=60)
            if i < failed:
                store.record_failed(c.key, me.id, "Traceback (most recent call last):\n  File x\nRuntimeError: oom")
            else:
                store.record_done(c.key, me.id, score=scores[c.key], metrics={"top1": scores[c.key]},
                                  timings={"cell_wall_s": 1.5}, versions={"python": "3.x", "torch": "2.14.1"})
    return path


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tables, self.refs, self.scripts, self.links = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "table":
            self.tables.append(a.get("data-name"))
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])
        if tag == "link":
            self.links.append(a)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    store = fill_store(tmp / "grid.sqlite")
    return build_report(store, tmp / "out", n_boot=50)


def test_html_is_self_contained_and_every_figure_is_a_real_png(report):
    text = report.html.read_text()
    p = Collector()
    p.feed(text)
    assert p.scripts == 0 and p.links == []
    assert all(r.startswith(("#", "data:image/png;base64,")) for r in p.refs), "external resource in the report"
    assert not re.search(r"https?://", text)
    names = {img["data-name"] for img in p.imgs}
    assert names == {f.name for f in report.figures.values()} and MAIN_FIGURE in names
    for img in p.imgs:
        data = base64.b64decode(img["src"].split(",", 1)[1])
        w, h = png_size(data)
        assert w >= 600 and h >= 350 and len(data) > 10_000, img["data-name"]
        assert img["alt"]
        on_disk = report.folder / "figures" / img["data-name"]
        assert on_disk.read_bytes() == data
    assert {"findings", "results", "correlation", "methods", "supervised", "balance", "anova", "similar",
            "tasks", "failed"} <= set(p.tables)


def test_findings_and_sections(report):
    text = report.html.read_text()
    assert len(report.findings) == 6
    for f in report.findings:
        assert f.verdict in ("supported", "not supported", "not testable")
        assert html.escape(f.claim) in text
    assert [f.number for f in report.findings if f.verdict == "not testable"] == []  # this grid can test all six
    assert "RuntimeError: oom" in text  # the failed cell is listed with its error
    assert "One seed per cell" not in text


def test_markdown_and_csv_twins(report):
    md = report.markdown.read_text()
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (report.folder / rel).is_file()
    assert md.count("![") == len(report.figures)
    assert "| # | claim (Kotar et al. 2021) | verdict |" in md
    rows = list(csv.reader(io.StringIO(report.csv.read_text())))
    assert rows[0][:4] == ["encoder", "role", "method", "corpus"] and rows[0][4:] == list(TASKS)
    assert len(rows) == 3 + 11
    cells = list(csv.DictReader(io.StringIO(report.cells_csv.read_text())))
    assert len(cells) == 11 * 5 * 2 and sum(c["status"] == "failed" for c in cells) == 1


def test_report_command(tmp_path, capsys):
    store = fill_store(tmp_path / "g.sqlite", seeds=(0,), failed=0)
    assert report_main([str(store), "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "finding 1:" in out and "finding 6:" in out
    page = (tmp_path / "g-report" / "report.html").read_text()
    assert "One seed per cell" in page
    assert report_main([str(tmp_path / "missing.sqlite")]) == 2
