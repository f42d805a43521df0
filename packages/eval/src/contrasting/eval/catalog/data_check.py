"""``contrasting tasks --check ROOT``: a user's data folder checked task by task before any training.

For each task, ``check_task_data`` says ``missing`` (an expected path is absent: the first one is named),
``malformed`` (the reader refused the data: its message names the file) or ``found`` with the number of train and
test samples the reader lists, compared with the published dataset's (``TaskSpec.expected_sizes``): ``found``
when they match, ``partial`` when they do not (a subset, or another release), ``found`` without a comparison
where the catalog has no published counts. Listing reads every split file and folder but decodes no image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from contrasting.eval.catalog.tasks import TaskDataError, TaskSpec, check_data, get_task, resolve_root

STATUSES = ("found", "partial", "missing", "malformed")


@dataclass(frozen=True)
class DataCheck:
    """One task's verdict on a data folder (module docstring): counts are (train, test) or None."""

    task: str
    status: str
    root: Path
    counts: tuple[int, int] | None = None
    expected: tuple[int, int] | None = None
    problem: str = ""

    def to_dict(self) -> dict:
        """A JSON-ready record."""
        return {"task": self.task, "status": self.status, "root": str(self.root),
                "train": None if self.counts is None else self.counts[0],
                "test": None if self.counts is None else self.counts[1],
                "expected_train": None if self.expected is None else self.expected[0],
                "expected_test": None if self.expected is None else self.expected[1], "problem": self.problem}


def check_task_data(spec: TaskSpec | str, data_root: os.PathLike | str | None = None) -> DataCheck:
    """Check one task's data under ``data_root`` (the catalog's root rules): see the module docstring."""
    from contrasting.eval.catalog.readers import read_task  # imports torch

    spec = get_task(spec)
    status = check_data(spec, data_root)
    if not status.present:
        return DataCheck(spec.name, "missing", status.root, expected=spec.expected_sizes,
                         problem=f"missing: {status.missing[0]}")
    try:
        data = read_task(spec, resolve_root(spec, data_root))
    except (TaskDataError, ValueError, OSError) as error:
        return DataCheck(spec.name, "malformed", status.root, expected=spec.expected_sizes,
                         problem=" ".join(str(error).split("\nexpected layout:")[0].split()))
    counts = (len(data.train), len(data.test))
    partial = spec.expected_sizes is not None and counts != tuple(spec.expected_sizes)
    problem = (f"{counts[0]} train / {counts[1]} test samples, the published dataset has "
               f"{spec.expected_sizes[0]} / {spec.expected_sizes[1]}") if partial else ""
    return DataCheck(spec.name, "partial" if partial else "found", status.root, counts, spec.expected_sizes, problem)
