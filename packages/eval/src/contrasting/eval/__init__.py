"""contrasting.eval: end-task catalog, heads, frozen-feature protocol and metrics (one cell of the grid).

    from contrasting.eval import run_cell, list_tasks
    result = run_cell("random:resnet18", "shapes-shape", seed=0)   # → CellResult
    result.value, result.metric, result.higher_is_better

Modules: ``tasks`` (TaskSpec registry), ``readers`` (layouts → samples), ``heads``, ``objectives`` (losses),
``metrics``, ``features`` (the feature cache), ``protocol`` (``run_cell``), ``cli``; ``_adapters`` is the
only module that touches contrasting.encoders and contrasting.data.
"""

from contrasting.eval._adapters import FrozenEncoder, load_encoder
from contrasting.eval.heads import (
    HEADS,
    DeepLabHead,
    LinearHead,
    MLPHead,
    TwoFrameUNetDecoder,
    UNetDecoder,
    build_head,
)
from contrasting.eval.metrics import L1, METRICS, BinaryIoU, ConfusionMatrix, FlowAccuracy, Top1, make_metric
from contrasting.eval.protocol import CellResult, run_cell
from contrasting.eval.readers import READERS, TaskData, read_task
from contrasting.eval.tasks import (
    TASKS,
    DataStatus,
    Layout,
    Schedule,
    TaskDataError,
    TaskSpec,
    check_data,
    get_task,
    list_tasks,
    register_task,
)

__version__ = "0.1.0"

__all__ = [
    "BinaryIoU", "CellResult", "ConfusionMatrix", "DataStatus", "DeepLabHead", "FlowAccuracy", "FrozenEncoder",
    "HEADS", "L1", "Layout", "LinearHead", "METRICS", "MLPHead", "READERS", "Schedule", "TASKS", "TaskData",
    "TaskDataError", "TaskSpec", "Top1", "TwoFrameUNetDecoder", "UNetDecoder", "build_head", "check_data",
    "get_task", "list_tasks", "load_encoder", "make_metric", "read_task", "register_task", "run_cell",
]
