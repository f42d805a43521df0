"""contrasting.eval: end-task catalog, heads, frozen-feature protocol and metrics (one cell of the grid), the grid,
and the analysis of its results.

    from contrasting.eval import run_cell, list_tasks
    result = run_cell("random:resnet18", "shapes-shape", seed=0)   # → CellResult
    result.value, result.metric, result.higher_is_better

    from contrasting.eval import analyze
    findings = analyze(pandas.read_csv("results.csv"))             # → FindingRecord per finding

Subpackages by job, each importing only those listed before it:

* ``catalog`` — the end tasks as data: ``tasks`` (TaskSpec registry, Schedule), ``readers`` (layouts → samples),
  ``world`` (the built-in world), ``metrics`` and ``metric_stats``, ``heads``, ``objectives`` (losses),
  ``data_check``;
* ``cell`` — one cell of the protocol: ``encoder`` (FrozenEncoder, load_encoder), ``features`` (the feature
  cache), ``protocol`` (``run_cell``);
* ``grid`` — many cells: ``spec`` (the grid spec), ``cells`` (keys, requests, executors), ``store`` (SQLite),
  ``pool`` (local workers), ``cluster`` (Slurm), ``cli`` (``contrasting grid``);
* ``analysis`` — ``results`` (the results-table contract), ``stats``, ``claims`` (the findings), ``plots``,
  ``report``, ``cli`` (``contrasting report``'s arguments); imports no torch (tests/eval/test_cli_startup.py).

``cli`` (``contrasting eval`` / ``tasks`` / ``report``) and ``demo`` (``contrasting demo``) sit on top. Names
are imported on first use, so that ``import contrasting.eval`` (and the analysis) stays light.
"""

from contrasting.data.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("FrozenEncoder", "load_encoder"), "cell.encoder"),
    **dict.fromkeys((
        "HEADS", "DeepLabHead", "LinearHead", "MLPHead", "TwoFrameUNetDecoder", "UNetDecoder", "build_head"
    ), "catalog.heads"),
    **dict.fromkeys((
        "L1", "METRICS", "BinaryIoU", "ConfusionMatrix", "FlowAccuracy", "Top1", "make_metric"
    ), "catalog.metrics"),
    **dict.fromkeys(("CellResult", "run_cell"), "cell.protocol"),
    **dict.fromkeys(("READERS", "TaskData", "read_task"), "catalog.readers"),
    **dict.fromkeys((
        "TASKS", "DataStatus", "Layout", "Schedule", "TaskDataError", "TaskSpec", "check_data", "get_task",
        "list_tasks", "register_task"
    ), "catalog.tasks"),
    **dict.fromkeys(("analyze", "FindingRecord", "CLAIMS"), "analysis.claims"),
    "ResultsError": "analysis.results", "read_results_csv": "analysis.results:read_csv",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, "contrasting-eval")
