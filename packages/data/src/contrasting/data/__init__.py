"""contrasting.data: multi-view SSL augmentation recipes executed by DALI (GPU or CPU) and torchvision.

Recipes (``recipes``, of the ops in ``ops``) are typed data, loadable from YAML, registered by name;
``make_loader`` runs one over a source (``sources``) with the DALI executor (``executors.dali_backend``, imported
only when used) or the torchvision reference (``executors.torchvision_backend``); the ops' arithmetic for each
executor lies in ``kernels``. Both executors take their random parameters from ``params`` and their epoch plan
from ``plan``, so they agree batch by batch. ``corpora`` knows the on-disk layouts of the pre-training corpora and
writes reproducible subsets as file lists; ``builtin`` generates the built-in world. Names are imported on first
use (``lazy``): importing this package, or a light module of it, imports no torch.
"""

from .lazy import lazy_exports

_MODULE_EXPORTS = {  # module → the public names it defines
    "executors.loader": ("Batch", "TorchvisionLoader", "ViewLoader", "make_loader", "resolve_backend"),
    "executors.torchvision_backend": ("torchvision_transforms",),
    "executors.workers": ("WorkerDiedError", "worker_context"),
    "params": ("ViewParams", "sample_batch", "sample_view"),
    "plan": ("EpochReport", "plan_epoch"),
    "recipes": ("IMAGENET_MEAN", "IMAGENET_STD", "ColorJitter", "GaussianBlur", "Grayscale", "HorizontalFlip", "Recipe",
                "Solarize", "View", "dump_recipe", "get_recipe", "list_recipes", "load_recipe", "register_recipe",
                "sized_recipe"),
    "sources": ("ArraySource", "Catalog", "FileListSource", "ImageFolderSource", "PairListSource",
                "UnreadableImageError", "scan_source", "write_file_list", "write_pair_list"),
}
_EXPORTS = {name: module for module, names in _MODULE_EXPORTS.items() for name in names}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS, "contrasting-data")
