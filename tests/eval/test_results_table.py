"""The results-table contract (``contrasting.eval.analysis.results``): typed columns, defaults, round trip, and bad
tables refused naming the row and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contrasting.eval.analysis.results import COLUMNS, ResultsError, read_csv, validate, write_csv
from tests.eval.grid_simulator import simulate


@pytest.fixture(scope="module")
def frame():
    return simulate(np.random.default_rng(0))


def test_required_and_optional_columns(frame):
    r = validate(frame)
    assert len(r.encoders) == 18 and len(r.tasks) == 20
    minimal = frame[[c.name for c in COLUMNS if c.required]]
    m = validate(minimal).frame
    assert (m["seed"] == 0).all() and m["se"].isna().all() and not m["reference"].any()
    assert m.loc[m["metric"] == "l1", "best"].eq(0.0).all() and m.loc[m["metric"] == "top1", "best"].eq(1.0).all()


def test_csv_round_trip_keeps_extra_columns(frame, tmp_path):
    extra = frame.assign(notes="kept")
    path = write_csv(validate(extra), tmp_path / "results.csv")
    back = pd.read_csv(path)
    assert "notes" in back.columns and (back["notes"] == "kept").all()
    again = write_csv(read_csv(path), tmp_path / "again.csv")
    assert path.read_text() == again.read_text()
    assert back.columns.tolist()[:3] == ["encoder", "task", "value"]  # one header row


@pytest.mark.parametrize("column", ["encoder", "task", "value", "role", "level", "kind", "metric",
                                    "higher_is_better", "baseline"])
def test_a_missing_required_column_is_named(frame, column):
    with pytest.raises(ResultsError, match=f"missing column.*'{column}'"):
        validate(frame.drop(columns=[column]))


@pytest.mark.parametrize("column, bad, expected", [
    ("value", "abc", "a number"), ("value", "inf", "a finite number"), ("level", "voxel", "image or pixel"),
    ("kind", "", "semantic or structural"), ("role", "teacher", "ssl or supervised or random"),
    ("higher_is_better", "maybe", "true or false"), ("se", "-1", "a standard error >= 0"),
    ("seed", "1.5", "an integer"), ("baseline", "", "a number")])
def test_a_bad_value_is_named_by_row_and_column(frame, column, bad, expected):
    f = frame.astype(object).copy()
    f.loc[7, column] = bad
    with pytest.raises(ResultsError, match=f"row 9, column '{column}': expected {expected}"):
        validate(f)


def test_duplicates_and_inconsistent_metadata_are_refused(frame):
    with pytest.raises(ResultsError, match=r"row 362, column 'seed': duplicates row 2"):
        validate(pd.concat([frame, frame.iloc[[0]]], ignore_index=True))
    f = frame.copy()
    f.loc[5, "role"] = "random"
    with pytest.raises(ResultsError, match=r"row 7, column 'role': encoder 'Supervised' has 'supervised'"):
        validate(f)
    f = frame.copy()
    f.loc[f["task"] == "pets", "metric"] = "weird"
    with pytest.raises(ResultsError, match="perfect score is unknown"):
        validate(f)
    with pytest.raises(ResultsError, match="no rows"):
        validate(frame.iloc[:0])


def test_unreadable_files_are_one_error(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(ResultsError, match="bin.csv"):
        read_csv(tmp_path / "bin.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ResultsError, match="empty.csv"):
        read_csv(tmp_path / "empty.csv")


@settings(max_examples=40, deadline=None)
@given(row=st.integers(0, 359), column=st.sampled_from([c.name for c in COLUMNS if c.required]),
       junk=st.sampled_from(["", "nan?", "—", "1e999x", "[1]"]))
def test_any_corrupted_required_cell_is_refused_and_named(frame, row, column, junk):
    f = frame.astype(object).copy()
    f.loc[row, column] = junk
    if column in ("encoder", "task") and junk.strip():
        return  # any non-empty name is a valid name
    with pytest.raises(ResultsError) as info:
        validate(f)
    assert f"row {row + 2}," in str(info.value) and repr(column) in str(info.value) or column == "metric"
