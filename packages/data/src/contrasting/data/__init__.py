"""contrasting.data: multi-view SSL augmentation recipes executed by DALI (GPU or CPU) and torchvision.

Recipes (``recipes``) are typed data, loadable from YAML, registered by name; ``make_loader`` runs one over
a source (``sources``) with the DALI executor (``dali_backend``, imported only when used) or the torchvision
reference (``torchvision_backend``); both take their random parameters from ``params`` and their epoch plan
from ``plan``, so they agree batch by batch. ``corpora`` knows the on-disk layouts of the pre-training
corpora and writes reproducible subsets as file lists. Names are imported on first use (``lazy``): importing this
package, or a light module of it, imports no torch.
"""

from .lazy import lazy_exports

_EXPORTS = {
    "Batch": "loader", "TorchvisionLoader": "loader", "ViewLoader": "loader", "make_loader": "loader",
    "resolve_backend": "loader", "ViewParams": "params", "sample_batch": "params", "sample_view": "params",
    "EpochReport": "plan", "plan_epoch": "plan", "IMAGENET_MEAN": "recipes", "IMAGENET_STD": "recipes",
    "ColorJitter": "recipes", "GaussianBlur": "recipes", "Grayscale": "recipes", "HorizontalFlip": "recipes",
    "Recipe": "recipes", "Solarize": "recipes", "View": "recipes", "dump_recipe": "recipes", "get_recipe": "recipes",
    "list_recipes": "recipes", "load_recipe": "recipes", "register_recipe": "recipes", "sized_recipe": "recipes",
    "ArraySource": "sources",
    "Catalog": "sources", "FileListSource": "sources", "ImageFolderSource": "sources", "PairListSource": "sources",
    "UnreadableImageError": "sources", "scan_source": "sources", "write_file_list": "sources",
    "write_pair_list": "sources", "torchvision_transforms": "torchvision_backend", "WorkerDiedError": "workers",
    "worker_context": "workers",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, "contrasting-data")
