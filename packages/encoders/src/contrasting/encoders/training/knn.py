"""Weighted k-nearest-neighbour accuracy of frozen features: a cheap check that pre-training learned something.

For each test embedding x (L2-normalised), its k nearest training embeddings by cosine similarity s_j
vote for their labels with weight exp(s_j / T) (Wu et al. 2018, the kNN monitor of InstDisc, MoCo and
solo-learn; k = 20, T = 0.07); the prediction is the class with the largest total.

    result = knn_builtin_task(backbone, "shape-cls")      # {"task", "top1", "k", "train", "test", ...}

``knn_builtin_task`` reads a classification task of the built-in world (``contrasting.data.builtin``)
with the ``eval_resize`` recipe (the whole image resized, as ViRB) and embeds its train and test splits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..backbones import ResNet


@torch.no_grad()
def embed(backbone: ResNet, batches, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) pooled embeddings and (N,) labels of an iterable of (views, labels), first view, eval mode."""
    backbone = backbone.to(device).eval()
    feats, labels = [], []
    for views, y in batches:
        feats.append(backbone.embed(views[0].to(device)).float().cpu())
        labels.append(y.cpu())
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, *,
                 k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    """Top-1 accuracy of the weighted kNN classifier (module docstring) fitted on (train_x, train_y)."""
    if k < 1:
        raise ValueError(f"k: expected an int >= 1, got {k}")
    classes = int(max(train_y.max(), test_y.max())) + 1
    train_x, test_x = F.normalize(train_x.float(), dim=1), F.normalize(test_x.float(), dim=1)
    k = min(k, train_x.shape[0])
    correct = 0
    for start in range(0, test_x.shape[0], chunk):
        sims, idx = (test_x[start:start + chunk] @ train_x.T).topk(k, dim=1)
        votes = torch.zeros(sims.shape[0], classes).scatter_add_(1, train_y[idx], (sims / temperature).exp())
        correct += int((votes.argmax(dim=1) == test_y[start:start + chunk]).sum())
    return correct / test_x.shape[0]


def knn_builtin_task(backbone: ResNet, task: str = "shape-cls", *, image_size: int | None = None,
                     root: str | None = None, batch_size: int = 128, k: int = 20, temperature: float = 0.07,
                     device: torch.device | str = "cpu") -> dict:
    """kNN top-1 of ``backbone`` on a built-in classification ``task`` (train split → test split).

    ``image_size`` None: the world's resolution. Needs ``contrasting.data``; raises its errors for unknown tasks.
    """
    from contrasting.data import ImageFolderSource, get_recipe, make_loader
    from contrasting.data.builtin import build_world

    world = build_world(root, progress=False)
    size = image_size or world.config.scene.resolution
    splits = {}
    for split in ("train", "test"):
        source = ImageFolderSource(world.tasks[task][split].root)
        loader = make_loader(get_recipe("eval_resize", size=size), source, batch_size, backend="torchvision",
                             shuffle=False, num_workers=0)
        splits[split] = embed(backbone, ((b.views, b.labels) for b in loader), device)
    top1 = knn_accuracy(*splits["train"], *splits["test"], k=k, temperature=temperature)
    return {"task": task, "top1": top1, "k": k, "temperature": temperature, "image_size": size,
            "train": len(splits["train"][1]), "test": len(splits["test"][1])}



def knn_folders(backbone: ResNet, train_dir: str, test_dir: str, *, image_size: int, batch_size: int = 256,
                k: int = 20, temperature: float = 0.07, device: torch.device | str = "cpu",
                autocast: bool = False) -> float:
    """kNN top-1 of ``backbone`` from the image folder ``train_dir`` to ``test_dir`` (one sub-folder per
    class; images resized whole to ``image_size``), in eval mode; the backbone's train/eval mode is restored."""
    from contrasting.data import ImageFolderSource, get_recipe, make_loader

    was_training = backbone.training
    splits = []
    try:
        for folder in (train_dir, test_dir):
            loader = make_loader(get_recipe("eval_resize", size=image_size), ImageFolderSource(folder), batch_size,
                                 backend="torchvision", shuffle=False, num_workers=0)
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
                splits.append(embed(backbone, ((b.views, b.labels) for b in loader), device))
    finally:
        backbone.train(was_training)
    return knn_accuracy(*splits[0], *splits[1], k=k, temperature=temperature)
