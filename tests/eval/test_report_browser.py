"""The report in a real browser: headless Chromium (Debian's ``chromium`` package) loads a copy of the HTML
with a probe script added, and every figure must decode and be laid out, every table be displayed.

The probe runs on ``load`` and writes what the browser sees (each image's ``complete``/``naturalWidth`` and
laid-out size, each table's rows and size) into the DOM, which ``--dump-dom`` prints. The report itself has
no script: the probe exists only in the test copy.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

from contrasting.eval.analysis.report import build_report
from tests.eval.test_report import fill_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,2000", "--virtual-time-budget=15000", "--dump-dom"]
PROBE = """<script>
window.addEventListener('load', () => {
  const box = e => e.getBoundingClientRect();
  const imgs = [...document.images].map(i => ({name: i.dataset.name, complete: i.complete, w: i.naturalWidth,
                                              h: i.naturalHeight, shown: box(i).width * box(i).height}));
  const tables = [...document.querySelectorAll('table')].map(t => ({name: t.dataset.name, rows: t.rows.length,
                                                                   shown: box(t).width * box(t).height}));
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({imgs, tables});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    files = build_report(fill_store(tmp_path / "grid.sqlite"), tmp_path / "out", replicates=20)
    page = files.html.read_text()
    probe_copy = tmp_path / "probe.html"
    probe_copy.write_text(page.replace("</body>", PROBE + "</body>"))
    out = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", probe_copy.as_uri()],
                         capture_output=True, text=True, timeout=180)
    match = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout, re.S)
    assert match, f"no probe output from chromium (rc {out.returncode}):\n{out.stderr[-2000:]}"
    seen = json.loads(html.unescape(match.group(1)))
    assert len(seen["imgs"]) == len(files.figures) == page.count("<img ")
    for img in seen["imgs"]:
        assert img["complete"] and img["w"] >= 600 and img["h"] >= 350, img
        assert img["shown"] > 0, f"{img['name']} is not laid out"
    assert len(seen["tables"]) == page.count("<table")
    for table in seen["tables"]:
        assert table["rows"] >= 2 and table["shown"] > 0, table
