"""The report: built from a store, the HTML parses and is self-contained, every figure is a real PNG (inline
and on disk), Markdown and CSV exports agree with the table, and `contrasting report` runs."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contrasting.eval.analysis.report import MAIN_FIGURE, build_report
from contrasting.eval.catalog.metric_stats import encode_samples
from contrasting.eval.cli import report_command
from contrasting.eval.grid.store import CellRecord, ResultStore, RunnerId

TASKS = {"shapes-shape": ("image", "semantic", "top1", True), "shapes-texture": ("image", "semantic", "top1", True),
         "shapes-count": ("image", "structural", "top1", True),
         "shapes-segmentation": ("pixel", "semantic", "miou", True),
         "shapes-depth": ("pixel", "structural", "l1", False)}


def fill_store(path: Path, seeds=(0, 1), failed: int = 1, *, signal: bool = True) -> Path:
    """A finished grid: SimCLR / MoCo v2 / SwAV on three corpora (a balanced/unbalanced pair among them), plus
    supervised and random, two seeds, one failed cell. Every cell records its test-set standard error and the
    task's trivial baseline; the top-1 cells of seed 0 record per-sample statistics. ``signal=False``: every
    cell at chance."""
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
    cells, results = [], {}
    for e, em in encoders.items():
        quality = 0.05 if em.get("random") else (0.9 if em.get("supervised") else rng.uniform(0.3, 0.7))
        for t, (lv, kind, metric, hib) in TASKS.items():
            tm = {"name": t, "level": lv, "kind": kind, "group": f"{lv} {kind}", "metric": metric,
                  "higher_is_better": hib, "similar_corpus": ["shapes-textures"] if t == "shapes-texture" else [],
                  "reference": t == "shapes-texture"}
            base = 1.0 if not hib else 0.2
            for s in seeds:
                q = -0.1 if not signal else quality * rng.uniform(0.8, 1.0)
                g = q + 0.02 * rng.standard_normal()
                value = base * (1 - g) if not hib else base + g * (1 - base)
                metrics = {metric: value, "baseline": base, "se": 0.02 * abs((0 if not hib else 1) - base)}
                if metric == "top1" and s == 0:
                    correct = (rng.random(300) < value).astype(int)
                    value = float(correct.mean())
                    metrics.update({metric: value, "per_sample": encode_samples(
                        "top1", np.stack([correct, np.ones(300, int)], 1))})
                key = f"{e}|{t}|{s}"
                cells.append(CellRecord(key, e, t, "default", {}, s, em, tm, {"key": key}))
                results[key] = (value, metrics)
    with ResultStore(path) as store:
        store.register("h1", "report-test", '{"hparams": {"default": {}}, "analysis": {}}', cells)
        me = RunnerId.current()
        for i, c in enumerate(cells):
            store.claim_keys(me, [c.key], lease_s=60)
            if i < failed:
                store.record_failed(c.key, me.id, "Traceback (most recent call last):\n  File x\nRuntimeError: oom")
            else:
                value, metrics = results[c.key]
                store.record_done(c.key, me.id, score=value, metrics=metrics,
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
    return build_report(store, tmp / "out", replicates=200)


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
        assert w >= 600 and h >= 250 and len(data) > 10_000, img["data-name"]
        assert img["alt"]
        on_disk = report.folder / "figures" / img["data-name"]
        assert on_disk.read_bytes() == data
    assert {"findings", "results", "ranks", "improvement", "correlation", "methods", "supervised", "balance",
            "similar", "claims", "tasks", "failed"} <= set(p.tables)


def test_findings_json_and_sections(report):
    text = report.html.read_text()
    records = json.loads(report.findings_json.read_text())
    assert [r["number"] for r in records] == [1, 2, 3, 4, 5, 6]
    for r in records:
        assert {"number", "name", "claim", "verdict", "effect", "ci_low", "ci_high", "p", "margin", "units",
                "reasons"} <= set(r)
        assert r["verdict"] in ("supported", "refuted", "inconclusive", "not testable") and r["reasons"]
        assert html.escape(r["claim"]) in text
    assert "RuntimeError: oom" in text  # the failed cell is listed with its error
    assert "Friedman test" in text and "Probability of improvement" in text


def test_markdown_and_csv_twins(report):
    md = report.markdown.read_text()
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (report.folder / rel).is_file()
    assert md.count("![") == len(report.figures)
    assert "| # | finding | verdict |" in md
    frame = pd.read_csv(report.csv)
    assert list(frame.columns[:5]) == ["encoder", "task", "value", "seed", "se"]
    assert len(frame) == 11 * 5 * 2 - 1  # one failed cell
    assert frame["baseline"].notna().all() and frame["se"].notna().all()
    cells = list(csv.DictReader(io.StringIO(report.cells_csv.read_text())))
    assert len(cells) == 11 * 5 * 2 and sum(c["status"] == "failed" for c in cells) == 1


def test_a_report_round_trips_through_its_results_csv(report, tmp_path):
    again = build_report(report.csv, tmp_path / "again", replicates=200)
    assert pd.read_csv(again.csv).equals(pd.read_csv(report.csv))
    first = {r["number"]: (r["verdict"], r["effect"]) for r in json.loads(report.findings_json.read_text())}
    second = {r["number"]: (r["verdict"], r["effect"]) for r in json.loads(again.findings_json.read_text())}
    for n in first:  # the CSV has no per-sample statistics: test-set replicates become parametric
        assert first[n][1] == pytest.approx(second[n][1]) or first[n][1] is None


def test_chance_cells_are_marked_and_a_grid_without_signal_tests_nothing(tmp_path):
    files = build_report(fill_store(tmp_path / "g.sqlite", seeds=(0,), failed=0, signal=False), tmp_path / "out",
                         replicates=50)
    assert {f.verdict for f in files.findings} == {"not testable"}
    assert all("chance" in " ".join(f.reasons) or f.reasons for f in files.findings)
    page = files.html.read_text()
    assert page.count('class="num chance"') >= 40 and "No encoder is above chance on" in page


def test_report_command(tmp_path, capsys):
    store = fill_store(tmp_path / "g.sqlite", seeds=(0,), failed=0)
    assert report_command([str(store), "--bootstrap", "20"]) == 0
    out = capsys.readouterr().out
    assert "finding 1 (supervised-domain-specific):" in out and "finding 6 (unbalanced-as-good):" in out
    csv_path = tmp_path / "g-report" / "results.csv"
    assert report_command([str(csv_path), "--out", str(tmp_path / "from-csv"), "--bootstrap", "20"]) == 0
    assert (tmp_path / "from-csv" / "findings.json").is_file()
    capsys.readouterr()
    for bad in ([str(tmp_path / "missing.sqlite")], [str(tmp_path)], [str(csv_path), "--bootstrap", "-1"],
                [str(csv_path), "--out", str(csv_path)]):
        assert report_command(bad) == 2, bad
        err = capsys.readouterr().err.strip()
        assert err.startswith("contrasting report: error:") and "\n" not in err, err


def test_comparison_with_another_report_names_changed_verdicts(report, tmp_path):
    records = json.loads(report.findings_json.read_text())
    flipped = [dict(r, verdict="refuted" if r["verdict"] != "refuted" else "supported") if r["number"] == 1 else r
               for r in records]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "findings.json").write_text(json.dumps(flipped))
    again = build_report(report.csv, tmp_path / "out", replicates=50, compare=tmp_path / "other")
    text = again.markdown.read_text()
    assert "## Verdicts beside" in text and "Conclusive verdicts that differ: 1 (supervised-domain-specific" in text
    with pytest.raises(Exception, match="not a findings.json"):
        build_report(report.csv, tmp_path / "out2", replicates=50, compare=tmp_path / "missing.json")


def test_a_report_on_study_tasks_declares_where_the_protocol_differs(tmp_path):
    from contrasting.eval.catalog.tasks import PROTOCOL_DEVIATIONS, TASKS
    from tests.eval.grid_simulator import simulate

    frame = simulate(np.random.default_rng(0))
    frame.to_csv(tmp_path / "results.csv", index=False)
    files = build_report(tmp_path / "results.csv", tmp_path / "out", replicates=50)
    text = files.markdown.read_text()
    assert "differs from the study" in text and PROTOCOL_DEVIATIONS[0].split(";")[0] in text
    for task in set(frame["task"]) & set(TASKS):
        for deviation in TASKS[task].deviations:
            assert deviation in text, (task, deviation)
