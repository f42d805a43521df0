"""Bad inputs to the eval package's commands (``contrasting eval``, ``tasks``, ``grid``, ``report``, ``demo``),
called through the dispatcher in-process: each ends with exit status 2 and ONE line on stderr,
``contrasting <command>[ <sub-command>]: error: <message>`` naming what is wrong (the option, the file), no
traceback, and nothing written — it is refused before any work starts. Structured inputs (grid specs,
results CSVs, ``--hparams`` settings, numeric option values) are generated with hypothesis.

A module-wide guard replaces the places where work would start (the demo's run, a grid's run, loading an
encoder for ``eval``) with a test failure, so that an input accepted by mistake fails fast instead of
training.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from contrasting.encoders.cli import main
from contrasting.eval.analysis.results import COLUMNS
from contrasting.eval.catalog.tasks import Schedule
from contrasting.eval.grid.spec import SpecError, spec_from_dict
from contrasting.eval.grid.store import ResultStore
from tests.eval.grid_simulator import simulate

EXAMPLES = settings(max_examples=25, deadline=None)


# ------------------------------------------------------------------------------------------------ helpers


def _started(what: str):
    def fail(*args, **kwargs):
        pytest.fail(f"{what} started work on a bad input")

    return fail


@pytest.fixture(autouse=True, scope="module")
def no_work():
    """Where work would start, the test fails instead (a bad input must be refused before)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("contrasting.eval.demo._demo", _started("the demo"))
        mp.setattr("contrasting.eval.grid.cli.run_grid", _started("the grid run"))
        mp.setattr("contrasting.eval.cell.protocol.load_encoder", _started("eval"))
        yield


def run(argv: list) -> tuple[int, str]:
    """The dispatcher's exit status for ``argv`` (argparse's ``SystemExit`` included) and its stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main([str(a) for a in argv])
        except SystemExit as stop:
            status = stop.code
    return status, err.getvalue()


def refused(argv: list, command: str, names: str = "", status: int = 2) -> str:
    """Run ``argv``; assert the exit status and one line ``contrasting <command>[ <sub>]: error: ...``
    containing ``names``, without a traceback; return the line."""
    code, err = run(argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == status, (code, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert re.match(rf"contrasting {command}( [a-z]+)?: error: \S", lines[0]), lines[0]
    assert names in lines[0], (names, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def refused_unchanged(root: Path, argv: list, command: str, names: str = "") -> str:
    """``refused`` and nothing under ``root`` created, changed or removed."""
    before = snapshot(root)
    line = refused(argv, command, names)
    assert snapshot(root) == before, line
    return line


def _image(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), (10, 20, 30)).save(path)


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder with a file, a folder, a broken link and a 3-class EuroSAT folder (the task has 10)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONTRASTING_DATA", str(tmp_path / "data-home"))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for c in ("Forest", "River", "Sea"):
        for i in range(4):
            _image(tmp_path / "data" / "eurosat" / "2750" / c / f"{c}_{i}.jpg")
    return tmp_path


# ----------------------------------------------------------------------------------------------------- eval

EVAL = ["eval", "--encoder", "random:resnet18", "--task", "eurosat", "--data-root", "data", "--quiet"]


@pytest.mark.parametrize("extra, names", [
    (["--epochs", "0"], "--epochs"), (["--epochs", "-3"], "--epochs"), (["--epochs", "1.5"], "--epochs"),
    (["--image-size", "0"], "--image-size"), (["--image-size", "big"], "--image-size"),
    (["--seed", "-1"], "--seed"), (["--workers", "-2"], "--workers"), (["--device", "tpu"], "--device"),
    (["--hparams", "{not json"], "--hparams"), (["--hparams", "[]"], "--hparams"),
    (["--hparams", '[{"epochs": 0}]'], "--hparams"), (["--hparams", '[{"lr": 1e-3}, 7]'], "--hparams"),
    (["--data-root", "afile"], "--data-root"), (["--cache-dir", "afile/sub"], "--cache-dir"),
    (["--encoder", "missing.pt"], "--encoder"), (["--frobnicate"], "unrecognized arguments"),
])
def test_eval_refuses_a_bad_option_before_any_work(place, extra, names):
    refused_unchanged(place, EVAL + extra, "eval", f"{names}")


def test_eval_without_an_encoder_names_it(place):
    refused_unchanged(place, ["eval", "--task", "eurosat"], "eval", "--encoder")


@pytest.mark.parametrize("extra, names", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "dtd"], "task 'dtd'"),
    (["--device", "cuda:999"], "--device cuda:999: no such CUDA device"),
    ([], "3 class folders found (Forest, River, Sea), the task has 10 classes"),
])
def test_eval_refuses_a_bad_task_or_data_before_training(place, extra, names):
    line = refused_unchanged(place, EVAL + extra, "eval", names)
    if not extra:
        assert str(Path("data") / "eurosat" / "2750") in line


_NOT_NUMBERS = st.one_of(st.text(max_size=6), st.none(), st.booleans(), st.lists(st.integers(), max_size=2))
_BAD_SCHEDULE = {
    "epochs": st.one_of(st.integers(max_value=0), st.floats(), _NOT_NUMBERS),
    "batch_size": st.one_of(st.integers(max_value=0), st.floats(), _NOT_NUMBERS),
    "lr": st.one_of(st.floats(max_value=0), st.sampled_from([float("nan"), float("inf")]), _NOT_NUMBERS),
    "weight_decay": st.one_of(st.floats(max_value=-1e-12), st.sampled_from([float("nan"), float("-inf")]),
                              _NOT_NUMBERS),
    "optimizer": st.one_of(st.text(max_size=6).filter(lambda t: t not in ("adam", "sgd")), st.integers()),
    "decay": st.one_of(st.text(max_size=6).filter(lambda t: t not in ("cosine", "step", "none")), st.floats()),
}


@st.composite
def bad_settings(draw) -> tuple[str, str]:
    """A ``--hparams`` list of good settings with one field made bad (a wrong value or an unknown key)."""
    good = draw(st.lists(st.fixed_dictionaries({}, optional={"lr": st.sampled_from([1e-3, 0.1]),
                                                             "epochs": st.integers(1, 5)}), max_size=2))
    key = draw(st.sampled_from([*_BAD_SCHEDULE, "unknown"]))
    if key == "unknown":
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in Schedule.__dataclass_fields__))
        bad = {key: 1}
    else:
        bad = {key: draw(_BAD_SCHEDULE[key])}
    position = draw(st.integers(0, len(good)))
    return json.dumps(good[:position] + [bad] + good[position:]), key


@EXAMPLES
@given(bad_settings())
def test_eval_refuses_hparams_with_one_bad_field(case):
    text, key = case
    with tempfile.TemporaryDirectory() as tmp:
        line = refused_unchanged(Path(tmp), EVAL[:5] + ["--data-root", tmp, "--hparams", text], "eval", "--hparams")
    assert "setting " in line


# ---------------------------------------------------------------------------------------------------- tasks


@pytest.mark.parametrize("argv, names", [
    (["--data-root", "afile"], "--data-root"), (["--data-root", "missing"], "--data-root"),
    (["--data-root", "afile/sub"], "--data-root"), (["--data-root", "dangling"], "--data-root"),
    (["--data-root", "adir", "--data-root", "afile"], "--data-root"), (["--data-root"], "--data-root"),
    (["--json=yes"], "--json"), (["--frobnicate"], "unrecognized arguments"),
    (["imagenet"], "unrecognized arguments"), (["-q"], "unrecognized arguments"),
    (["--help=x"], "--help"),
])
def test_tasks_refuses_a_bad_option(place, argv, names):
    refused_unchanged(place, ["tasks", *argv], "tasks", names)


# ----------------------------------------------------------------------------------------------------- grid

SPEC = {
    "name": "study", "store": "out/results.sqlite",
    "encoders": [{"name": "R", "kind": "random", "arch": "resnet18"},
                 {"name": "S", "kind": "supervised", "arch": "resnet18"}],
    "tasks": ["shapes-shape", {"name": "shapes-digit", "supervised_domain": True}],
    "hparams": {"default": {"lr": 1.0e-3, "epochs": 1}},
    "seeds": [0, 1],
    "runner": {"workers": 1, "device": "cpu", "timeout_s": 60},
    "analysis": {"reference_task": "shapes-shape"},
}


@pytest.fixture
def grid_place(place):
    """``place`` with a well-typed spec, an empty store, garbage files and a corrupt YAML."""
    (place / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    ResultStore(place / "empty.sqlite").close()
    (place / "garbage.sqlite").write_bytes(bytes(range(256)) * 4)
    (place / "corrupt.yaml").write_text("encoders: [random\ntasks: {: :\n")
    return place


@pytest.mark.parametrize("argv, names", [
    (["run", "spec.yaml", "--workers", "-1"], "--workers"), (["run", "spec.yaml", "--workers", "0"], "--workers"),
    (["run", "spec.yaml", "--timeout", "nan"], "--timeout"), (["run", "spec.yaml", "--timeout", "0"], "--timeout"),
    (["run", "spec.yaml", "--device", "tpu"], "--device"), (["run", "spec.yaml", "--executor", "x"], "--executor"),
    (["run", "spec.yaml", "--slurm", "partition"], "--slurm"), (["run", "spec.yaml", "workers"], "key=value"),
    (["run", "missing.yaml"], "spec"), (["run", "adir"], "spec"), (["run", "spec.yaml", "--store", "adir"], "--store"),
    (["run", "spec.yaml", "--cluster", "pbs"], "--cluster"),
    (["run", "spec.yaml", "--cluster-folder", "afile"], "--cluster-folder"),
    (["run", "spec.yaml", "runner.workers=-1"], "runner.workers: must be at least 1"),
    (["run", "spec.yaml", "runner.timeout_s=.nan"], "runner.timeout_s"),
    (["run", "corrupt.yaml"], "not valid YAML"),
    (["status", "missing.sqlite"], "store"), (["status", "adir"], "store"),
    (["status", "afile"], "not a results store"), (["status", "garbage.sqlite"], "not a results store"),
    (["status", "empty.sqlite", "--failures", "-1"], "--failures"),
    (["status", "empty.sqlite", "--spec-hash", "zz"], "--spec-hash"),
    (["status", "empty.sqlite", "--spec-hash", "abc"], "no grid with spec hash 'abc'"),
    (["status", "corrupt.yaml"], "not valid YAML"),
    (["ingest", "missing.sqlite"], "store"), (["ingest", "empty.sqlite", "--results", "missing"], "--results"),
    (["ingest", "empty.sqlite", "--results", "afile"], "--results"), (["ingest", "afile"], "not a results store"),
    (["repair", "missing.sqlite", "--out", "new.sqlite"], "store"),
    (["repair", "empty.sqlite", "--out", "afile"], "exists"),
    (["repair", "empty.sqlite", "--out", "afile/new.sqlite"], "--out"), (["repair", "empty.sqlite"], "--out"),
    ([], "required"), (["frobnicate"], "invalid choice"),
])
def test_grid_refuses_a_bad_option_spec_or_store(grid_place, argv, names):
    refused_unchanged(grid_place, ["grid", *argv], "grid", names)


def _mutations():
    """(path, bad value) pairs the spec's typing refuses: a required section removed or a field retyped."""
    text, nums = st.text(max_size=5), st.one_of(st.integers(), st.floats(allow_nan=False))
    return st.one_of(
        st.tuples(st.sampled_from([("encoders",), ("tasks",)]), st.just(None)),
        st.tuples(st.just(("encoders",)), st.one_of(nums, text, st.just({}), st.just([]))),
        st.tuples(st.just(("encoders", 0, "kind")), st.one_of(nums, text)),
        st.tuples(st.just(("encoders", 1, "name")), st.one_of(nums, st.just([1]))),
        st.tuples(st.just(("tasks",)), st.one_of(nums, st.just({}), st.just([]))),
        st.tuples(st.just(("tasks", 1, "supervised_domain")), st.one_of(nums, text)),
        st.tuples(st.just(("seeds",)), st.one_of(st.floats(allow_nan=False), text, st.just({"a": 1}))),
        st.tuples(st.just(("runner", "workers")), st.one_of(st.integers(max_value=0), st.floats(), text)),
        st.tuples(st.just(("runner", "timeout_s")), st.one_of(st.floats(max_value=0), st.just(float("nan")), text)),
        st.tuples(st.just(("runner", "device")), st.one_of(text.filter(lambda t: t not in ("auto", "cpu", "cuda")),
                                                           st.integers())),
        st.tuples(st.just(("runner", "nonsense")), st.integers()),
        st.tuples(st.just(("analysis", "reference_task")), st.sampled_from(["imagenet", "nope"])),
        st.tuples(st.just(("store",)), st.one_of(st.integers(), st.just([1]), st.just({"a": 1}))),
    )


def _mutated(path: tuple, value) -> dict:
    spec = json.loads(json.dumps(SPEC))
    where = spec
    for part in path[:-1]:
        where = where[part]
    if value is None:
        del where[path[-1]]
    else:
        where[path[-1]] = value
    return spec


def _typing_refuses(spec: dict) -> bool:
    try:
        spec_from_dict(spec)
    except SpecError:
        return True
    return False


@EXAMPLES
@given(_mutations(), st.sampled_from(["run", "status"]))
def test_grid_refuses_a_spec_with_a_field_removed_or_retyped(mutation, sub):
    spec = _mutated(*mutation)
    assume(_typing_refuses(spec))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
        line = refused_unchanged(Path(tmp), ["grid", sub, path], "grid", "invalid grid spec")
        assert not (Path(tmp) / "out").exists()
    assert str(mutation[0][0]) in line


# --------------------------------------------------------------------------------------------------- report


@functools.cache
def _results_csv() -> str:
    """A valid results table in the CSV format (the simulated study grid)."""
    return simulate(np.random.default_rng(0)).to_csv(index=False)


@pytest.fixture
def report_place(grid_place):
    """``grid_place`` with a valid results CSV, an empty CSV and a binary one."""
    (grid_place / "results.csv").write_text(_results_csv())
    (grid_place / "empty.csv").write_text("")
    (grid_place / "binary.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    return grid_place


@pytest.mark.parametrize("argv, names", [
    (["adir"], "source"), (["missing.csv"], "source"), ([], "source"),
    (["garbage.sqlite"], "not a results store"), (["afile"], "not a results store"),
    (["corrupt.yaml"], "not valid YAML"), (["spec.yaml"], "no such results store"), (["empty.sqlite"], "holds no grid"),
    (["empty.csv"], "empty.csv"), (["binary.csv"], "binary.csv"),
    (["results.csv", "--out", "afile"], "--out"), (["results.csv", "--out", "afile/report"], "--out"),
    (["results.csv", "--bootstrap", "-1"], "--bootstrap"), (["results.csv", "--bootstrap", "many"], "--bootstrap"),
    (["results.csv", "--compare", "missing"], "--compare"), (["results.csv", "--spec-hash", "zz"], "--spec-hash"),
])
def test_report_refuses_a_bad_source_or_option(report_place, argv, names):
    extra = ["--title", "t"] if "--out" in argv else ["--out", "rep"]
    refused_unchanged(report_place, ["report", *argv, *extra], "report", names)
    assert not (report_place / "rep").exists()


_REQUIRED = [c.name for c in COLUMNS if c.required]


@st.composite
def bad_tables(draw) -> tuple[str, str]:
    """A valid results CSV with one defect: a required column missing, an unknown level, a non-numeric value
    or a duplicated row. Returns (csv text, the column the error names)."""
    import pandas as pd

    frame = pd.read_csv(io.StringIO(_results_csv()))
    kind = draw(st.sampled_from(["missing", "level", "value", "duplicate"]))
    row = draw(st.integers(0, len(frame) - 1))
    if kind == "missing":
        column = draw(st.sampled_from(_REQUIRED))
        return frame.drop(columns=[column]).to_csv(index=False), column
    if kind == "duplicate":
        return pd.concat([frame, frame.iloc[[row]]], ignore_index=True).to_csv(index=False), "seed"
    words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
    column, bad = ("level", draw(words.filter(lambda w: w not in ("image", "pixel")))) if kind == "level" else \
        ("value", draw(words))
    frame = frame.astype({column: object})
    frame.loc[row, column] = bad
    return frame.to_csv(index=False), column


@EXAMPLES
@given(bad_tables())
def test_report_refuses_a_results_csv_with_one_defect(case):
    text, column = case
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "results.csv").write_text(text)
        line = refused_unchanged(Path(tmp), ["report", Path(tmp) / "results.csv", "--out", Path(tmp) / "rep"],
                                 "report", "results.csv")
    assert f"'{column}'" in line


# ----------------------------------------------------------------------------------------------------- demo


@pytest.mark.parametrize("extra, names", [
    (["--workers", "0"], "--workers"), (["--workers", "-1"], "--workers"),
    (["--budget-minutes", "nan"], "--budget-minutes"), (["--budget-minutes", "0"], "--budget-minutes"),
    (["--budget-minutes", "-5"], "--budget-minutes"), (["--budget-minutes", "inf"], "--budget-minutes"),
    (["--world-seed", "-1"], "--world-seed"), (["--out", "afile"], "--out"), (["--out", "afile/sub"], "--out"),
    (["--compare", "missing"], "--compare"), (["--compare", "afile"], "--compare"),
    (["--data-root", "afile"], "--data-root"), (["--preset", "huge"], "--preset"),
    (["--frobnicate"], "unrecognized arguments"),
])
def test_demo_refuses_a_bad_option_before_writing(place, extra, names):
    refused_unchanged(place, ["demo", "--preset", "tiny", "--out", "demo-out", "--data-root", "demo-data", *extra],
                      "demo", names)
    assert not (place / "demo-out").exists() and not (place / "demo-data").exists()


# ---------------------------------------------------------------------------------------- every numeric option

_DEMO = ["demo", "--out", "{root}/demo-out"]
NUMERIC = [  # (argv before the option, "{root}" standing for the test's folder; option; least value; integer?)
    (EVAL[:5], "--epochs", 1, True), (EVAL[:5], "--image-size", 1, True), (EVAL[:5], "--seed", 0, True),
    (EVAL[:5], "--workers", 0, True),
    (["grid", "run", "{root}/spec.yaml"], "--workers", 1, True),
    (["grid", "run", "{root}/spec.yaml"], "--timeout", 0, False),
    (["grid", "status", "{root}/spec.yaml"], "--failures", 0, True),
    (["report", "{root}/results.csv"], "--bootstrap", 0, True),
    (_DEMO, "--workers", 1, True), (_DEMO, "--budget-minutes", 0, False), (_DEMO, "--world-seed", 0, True),
]


@st.composite
def bad_numbers(draw) -> tuple[list, str, str]:
    """A numeric option of some command with a value its type refuses: below its least value (0 excluded for
    the positive floats), not finite, not an integer where one is expected, or not a number."""
    prefix, option, least, integer = draw(st.sampled_from(NUMERIC))
    below = st.integers(max_value=least - 1) if integer else st.floats(max_value=least)
    value = draw(st.one_of(below.map(str), st.sampled_from(["nan", "inf", "-inf", "", "1e3x", "0x10", "two"]),
                           *([st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f))
                              .map(repr)] if integer else [])))
    return prefix, option, value


@EXAMPLES
@given(bad_numbers())
def test_every_numeric_option_refuses_a_bad_value_naming_itself(case):
    prefix, option, value = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "spec.yaml").write_text(yaml.safe_dump(SPEC))
        (root / "results.csv").write_text("encoder\n")
        argv = [part.format(root=root) for part in prefix]
        refused_unchanged(root, [*argv, f"{option}={value}"], prefix[0], option)
