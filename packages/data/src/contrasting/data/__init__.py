"""contrasting.data: multi-view SSL augmentation recipes executed by DALI (GPU or CPU) and torchvision.

Recipes (``recipes``) are typed data, loadable from YAML, registered by name; ``make_loader`` runs one over
a source (``sources``) with the DALI executor (``dali_backend``, imported only when used) or the torchvision
reference (``torchvision_backend``); both take their random parameters from ``params`` and their epoch plan
from ``plan``, so they agree batch by batch. ``corpora`` knows the on-disk layouts of the pre-training
corpora and writes reproducible subsets as file lists.
"""

from .loader import Batch, TorchvisionLoader, ViewLoader, make_loader, resolve_backend
from .params import ViewParams, sample_batch, sample_view
from .plan import EpochReport, plan_epoch
from .recipes import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ColorJitter,
    GaussianBlur,
    Grayscale,
    HorizontalFlip,
    Recipe,
    Solarize,
    View,
    dump_recipe,
    get_recipe,
    list_recipes,
    load_recipe,
    register_recipe,
)
from .sources import (
    ArraySource,
    Catalog,
    FileListSource,
    ImageFolderSource,
    PairListSource,
    UnreadableImageError,
    scan_source,
    write_file_list,
    write_pair_list,
)
from .torchvision_backend import torchvision_transforms
from .workers import WorkerDiedError, worker_context

__all__ = [
    "make_loader", "resolve_backend", "ViewLoader", "TorchvisionLoader", "Batch", "EpochReport", "plan_epoch",
    "Recipe", "View", "ColorJitter", "Grayscale", "GaussianBlur", "Solarize", "HorizontalFlip",
    "IMAGENET_MEAN", "IMAGENET_STD", "get_recipe", "list_recipes", "register_recipe", "load_recipe", "dump_recipe",
    "ViewParams", "sample_view", "sample_batch",
    "ImageFolderSource", "FileListSource", "ArraySource", "PairListSource", "Catalog", "scan_source",
    "write_file_list", "write_pair_list", "UnreadableImageError", "torchvision_transforms",
    "worker_context", "WorkerDiedError",
]
