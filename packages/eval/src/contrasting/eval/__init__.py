"""contrasting.eval: end-task catalog, heads, frozen-feature protocol and metrics (one cell of the grid), the grid,
and the analysis of its results.

    from contrasting.eval import run_cell, list_tasks
    result = run_cell("random:resnet18", "shapes-shape", seed=0)   # → CellResult
    result.value, result.metric, result.higher_is_better

    from contrasting.eval import analyze
    findings = analyze(pandas.read_csv("results.csv"))             # → FindingRecord per finding

Modules: ``tasks`` (TaskSpec registry), ``readers`` (layouts → samples), ``heads``, ``objectives`` (losses),
``metrics``, ``features`` (the feature cache), ``protocol`` (``run_cell``), ``cli``; the analysis —
``results`` (the results-table contract), ``stats``, ``claims`` (the findings), ``report`` — imports no torch.
Names are imported on first use, so that ``import contrasting.eval`` (and the analysis) stays light.
"""

from contrasting.data.lazy import lazy_exports

_EXPORTS = {
    "FrozenEncoder": "_adapters", "load_encoder": "_adapters",
    "HEADS": "heads", "DeepLabHead": "heads", "LinearHead": "heads", "MLPHead": "heads",
    "TwoFrameUNetDecoder": "heads", "UNetDecoder": "heads", "build_head": "heads",
    "L1": "metrics", "METRICS": "metrics", "BinaryIoU": "metrics", "ConfusionMatrix": "metrics",
    "FlowAccuracy": "metrics", "Top1": "metrics", "make_metric": "metrics",
    "CellResult": "protocol", "run_cell": "protocol",
    "READERS": "readers", "TaskData": "readers", "read_task": "readers",
    "TASKS": "tasks", "DataStatus": "tasks", "Layout": "tasks", "Schedule": "tasks", "TaskDataError": "tasks",
    "TaskSpec": "tasks", "check_data": "tasks", "get_task": "tasks", "list_tasks": "tasks",
    "register_task": "tasks",
    "analyze": "claims", "FindingRecord": "claims", "CLAIMS": "claims",
    "ResultsError": "results", "read_results_csv": "results:read_csv",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, "contrasting-eval")
