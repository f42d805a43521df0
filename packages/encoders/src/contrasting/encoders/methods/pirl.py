"""PIRL (Misra & van der Maaten, CVPR 2020): an image and its jigsaw-shuffled patches map near one memory-bank row.

Per image I of the corpus (index i) and its two views (the image view v_I, the jigsaw source view v_I^t):

    f(v_I)   = normalize(head(φ(v_I)))                                   φ: the backbone's pooled embedding
    g(v_I^t) = normalize(jigsaw_head([patch_head(φ(t_π(1))), ..., patch_head(φ(t_π(9)))]))

t_1..t_9: the 3 × 3 grid of v_I^t, a P × P patch at a random offset inside each cell (P = the paper's 64 of 85 px
of the cell), all through the same backbone; π a random permutation per image (the patch representations are
concatenated in random order, the paper's g). A memory bank m (corpus size × D, rows L2-normalised, random unit
vectors at the start) holds per image an exponential moving average of f, started at the image's first f:

    m_i ← normalize(μ·m_i + (1 − μ)·f(v_I))                  (μ = 0.5, after the loss, in training mode)
    m_i ← f(v_I) on the image's first visit                    (``visited``; a random row would stay half random
                                                                for epochs and hold a short run at chance)
    L   = λ·NCE(g(v_I^t), m_i) + (1 − λ)·NCE(f(v_I), m_i)     (λ = 0.5)
    NCE(q, m_i) = −log exp(q·m_i/τ) / (exp(q·m_i/τ) + Σ_{j ∈ negatives} exp(q·m_j/τ))        (τ = 0.07)

each term ``info_nce(q, m[i], m[negatives], in_batch_negatives=False)`` of ``contrasting.losses`` (fused, the
N × M logits never built), its own ``num_negatives`` rows drawn without replacement from the bank minus this
step's images (all ranks'); fewer when the corpus holds fewer. Departures from the paper: the softmax form of NCE
(VISSL's ``cross_entropy`` loss type) instead of the paper's binary noise-contrastive estimator, so the loss of
a run that learned nothing is ln(1 + negatives); the patches are cut on the accelerator from the second view (no
per-patch colour jitter); linear heads as in the paper.

State: the bank (``memory``), its ``visited`` flags and the draw counter (``draws``) are buffers, so they are in the
state dict and every checkpoint. The jigsaw layout and the negatives of a forward are drawn from a generator seeded
by (``seed``, ``draws``), so a resumed run draws what the uninterrupted one drew. The forward needs each sample's
corpus index (``indices``, (N,) int64 < ``corpus_size``): ``MethodSpec.corpus_indices`` makes the data sources
deliver them and the trainer sets ``corpus_size`` from the corpus when unset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from contrasting.losses import info_nce

from ..backbones import ResNet
from ..seeds import mix_seed
from ._base import Method, check_views, world_size
from .moco import _all_gather
from .spec import MethodSpec, ShortRun, register_method


@dataclass
class PIRLConfig:
    """PIRL's hyper-parameters (the paper's ImageNet values; ``num_negatives`` per NCE term, the study's 65536)."""

    projection_dim: int = 128
    temperature: float = 0.07
    num_negatives: int = 65536
    loss_lambda: float = 0.5
    memory_momentum: float = 0.5
    corpus_size: int | None = None
    grid: int = 3
    patch_fraction: float = 64 / 85
    seed: int = 0


def patch_size(image_size: int, grid: int, fraction: float) -> tuple[int, int]:
    """(cell, P): cell = ⌊S / grid⌋, P = max(1, round(fraction·cell)), the patch side cut from each cell."""
    cell = image_size // grid
    if cell < 1:
        raise ValueError(f"jigsaw: a {image_size} px view has no {grid} × {grid} grid")
    return cell, min(cell, max(1, round(fraction * cell)))


def sample_jigsaw(n: int, grid: int, cell: int, patch: int, generator: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(offsets (n, grid², 2) in [0, cell − patch], permutations (n, grid²): each row a permutation of grid²)."""
    offsets = torch.randint(0, cell - patch + 1, (n, grid * grid, 2), generator=generator)
    perms = torch.rand(n, grid * grid, generator=generator).argsort(dim=1)
    return offsets, perms


def jigsaw_tiles(x: torch.Tensor, grid: int, cell: int, patch: int, offsets: torch.Tensor) -> torch.Tensor:
    """The (N, grid², C, P, P) patches of (N, C, H, W) ``x``: patch k = row-major cell (r, c) = divmod(k, grid),

        tiles[n, k] = x[n, :, r·cell + oy : r·cell + oy + P, c·cell + ox : c·cell + ox + P],  (oy, ox) = offsets[n, k]
    """
    n, k = x.shape[0], grid * grid
    cells = torch.arange(k, device=x.device)
    base = torch.stack([cells // grid, cells % grid], dim=1) * cell  # (k, 2)
    start = base[None] + offsets.to(x.device)  # (N, k, 2)
    span = torch.arange(patch, device=x.device)
    rows = start[..., 0, None] + span  # (N, k, P)
    cols = start[..., 1, None] + span
    picked = x[torch.arange(n, device=x.device)[:, None, None, None], :, rows[..., :, None], cols[..., None, :]]
    return picked.permute(0, 1, 4, 2, 3)  # (N, k, P, P, C) → (N, k, C, P, P)


def draw_negatives(corpus_size: int, exclude: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct corpus indices outside ``exclude``, uniformly without replacement (all of them when fewer
    remain), as a CPU int64 tensor."""
    keep = torch.ones(corpus_size, dtype=torch.bool)
    keep[exclude.detach().cpu().long()] = False
    candidates = keep.nonzero().squeeze(1)
    if count >= candidates.numel():
        return candidates
    return candidates[torch.randperm(candidates.numel(), generator=generator)[:count]]


@torch.no_grad()
def memory_update_(memory: torch.Tensor, indices: torch.Tensor, features: torch.Tensor, momentum: float,
                   visited: torch.Tensor | None = None) -> None:
    """m_i ← normalize(μ·m_i + (1 − μ)·normalize(f_i)) for the rows ``indices`` of ``memory``, in place; a row
    not yet ``visited`` (bool, corpus size) is set to normalize(f_i) instead, and marked visited."""
    f = F.normalize(features.detach().to(memory.dtype), dim=1)
    mixed = F.normalize(momentum * memory[indices] + (1.0 - momentum) * f, dim=1)
    if visited is not None:
        first = ~visited[indices]
        mixed = torch.where(first[:, None], f, mixed)
        visited[indices] = True
    memory[indices] = mixed


class PIRL(Method):
    """``loss = PIRL(backbone, config)([image_view, jigsaw_view], indices=corpus_indices)`` (module docstring)."""

    def __init__(self, backbone: ResNet, config: PIRLConfig, process_group=None):
        super().__init__(backbone, process_group)
        if config.corpus_size is None or config.corpus_size < 2:
            raise ValueError(f"corpus_size: expected the number of images of the corpus (>= 2), got "
                             f"{config.corpus_size}; the trainer sets it from the corpus")
        if config.num_negatives < 1:
            raise ValueError(f"num_negatives: expected an int >= 1, got {config.num_negatives}")
        for name in ("loss_lambda", "memory_momentum"):
            if not 0.0 <= getattr(config, name) <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {getattr(config, name)}")
        if config.grid < 1 or not 0.0 < config.patch_fraction <= 1.0:
            raise ValueError(f"grid / patch_fraction: expected >= 1 / in (0, 1], got {config.grid} / "
                             f"{config.patch_fraction}")
        self.config = config
        dim, d = backbone.embed_dim, config.projection_dim
        self.head = nn.Linear(dim, d)
        self.patch_head = nn.Linear(dim, d)
        self.jigsaw_head = nn.Linear(config.grid * config.grid * d, d)
        g = torch.Generator().manual_seed(config.seed)
        self.register_buffer("memory", F.normalize(torch.randn(config.corpus_size, d, generator=g), dim=1))
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))
        self.register_buffer("visited", torch.zeros(config.corpus_size, dtype=torch.bool))

    def generator(self) -> torch.Generator:
        """The CPU generator of this forward's jigsaw layout and negatives, seeded by (seed, draws)."""
        return torch.Generator().manual_seed(mix_seed(self.config.seed, int(self.draws)))

    def image_embedding(self, x: torch.Tensor) -> torch.Tensor:
        """f(v_I) = normalize(head(φ(v_I))), float32."""
        return F.normalize(self.head(self.backbone.embed(x)).float(), dim=1)

    def jigsaw_embedding(self, x: torch.Tensor, offsets: torch.Tensor, perms: torch.Tensor) -> torch.Tensor:
        """g(v_I^t) = normalize(jigsaw_head(concat_j patch_head(φ(tile_{perms[n, j]})))), float32."""
        grid, n, d = self.config.grid, x.shape[0], self.config.projection_dim
        cell, patch = patch_size(min(x.shape[-2:]), grid, self.config.patch_fraction)
        tiles = jigsaw_tiles(x, grid, cell, patch, offsets).flatten(0, 1).contiguous()
        z = self.patch_head(self.backbone.embed(tiles)).view(n, grid * grid, d)
        z = z.gather(1, perms.to(x.device)[..., None].expand(-1, -1, d))
        return F.normalize(self.jigsaw_head(z.flatten(1)).float(), dim=1)

    def _check_indices(self, indices, n: int, device) -> torch.Tensor:
        if indices is None:
            raise ValueError("indices: PIRL needs each sample's corpus index, (N,) int64; the data sources deliver "
                             "them for methods whose MethodSpec sets corpus_indices")
        indices = torch.as_tensor(indices, device=device)
        if indices.shape != (n,) or indices.is_floating_point() or indices.is_complex():
            raise ValueError(f"indices: expected ({n},) integers, got {indices.dtype} {tuple(indices.shape)}")
        if n and (int(indices.min()) < 0 or int(indices.max()) >= self.config.corpus_size):
            raise ValueError(f"indices: expected values in [0, {self.config.corpus_size}) (corpus_size), got "
                             f"[{int(indices.min())}, {int(indices.max())}]")
        return indices.long()

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None,
                indices: torch.Tensor | None = None) -> torch.Tensor:
        """L = λ·NCE(g(v_I^t), m_i) + (1 − λ)·NCE(f(v_I), m_i); in training mode then the bank update and draws += 1."""
        x_img, x_jig = check_views(views, min_views=2, max_views=2)
        indices = self._check_indices(indices, x_img.shape[0], self.memory.device)
        cfg, g = self.config, self.generator()
        cell, patch = patch_size(min(x_jig.shape[-2:]), cfg.grid, cfg.patch_fraction)
        offsets, perms = sample_jigsaw(x_jig.shape[0], cfg.grid, cell, patch, g)
        f = self.image_embedding(x_img)
        gj = self.jigsaw_embedding(x_jig, offsets, perms)
        distributed = world_size(self.process_group) > 1
        every = _all_gather(indices, self.process_group) if distributed else indices
        neg_jigsaw = draw_negatives(cfg.corpus_size, every, cfg.num_negatives, g).to(self.memory.device)
        neg_image = draw_negatives(cfg.corpus_size, every, cfg.num_negatives, g).to(self.memory.device)
        positives = self.memory[indices]  # indexing copies: the update below does not touch the saved inputs
        loss = (cfg.loss_lambda * self._nce(gj, positives, neg_jigsaw)
                + (1.0 - cfg.loss_lambda) * self._nce(f, positives, neg_image))
        if self.training:
            feats = _all_gather(f.detach(), self.process_group) if distributed else f.detach()
            memory_update_(self.memory, every, feats, cfg.memory_momentum, self.visited)
            self.draws += 1
        return loss

    def _nce(self, q: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        return info_nce(q, positives, self.memory[negatives], temperature=self.config.temperature,
                        in_batch_negatives=False, check_finite=False)


def export_vissl(method: PIRL) -> dict:
    """``method`` as a VISSL PIRL checkpoint: {"classy_state_dict": {"base_model": {"model": {"trunk":
    {"_feature_blocks.<backbone key>": ...}, "heads": {...}}}}} — what ``load_backbone`` reads as layout "vissl"."""
    trunk = {f"_feature_blocks.{k}": v.detach().cpu().clone() for k, v in method.backbone.state_dict().items()}
    heads = {f"{name}.{k}": v.detach().cpu().clone()
             for name in ("head", "patch_head", "jigsaw_head") for k, v in getattr(method, name).state_dict().items()}
    return {"type": "checkpoint", "iteration": int(method.step),
            "classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": heads}}}}


def _short_run(run: ShortRun) -> dict:
    # MoCo's short-run choices (not tuned for PIRL): at most 4 batches of negatives per term, SGD at 0.1 without
    # batch scaling, tau 0.2 (MoCo's measurement on the demo's corpus: 0.07 rises late in short runs), crops 30-100 %
    return {"method": {"num_negatives": min(512, 4 * run.batch_size), "temperature": 0.2},
            "optim": {"lr": 0.1, "scale_lr_with_batch": False, "warmup_epochs": run.warmup_epochs},
            "data": {"options": {"scale": [0.3, 1.0], "blur": False}}}


def _chance_loss(options, batch_size: int) -> float:
    """ln(1 + M) (λ + (1 − λ) = 1), M the negatives a term scores: ``num_negatives`` bounded by the corpus."""
    count = int(options.get("num_negatives", PIRLConfig.num_negatives))
    if options.get("corpus_size"):
        count = min(count, int(options["corpus_size"]) - batch_size)
    return math.log(count + 1)


PIRL_SPEC = MethodSpec(
    # SGD momentum 0.9, weight decay 1e-4, cosine (the paper); lr 0.12 per 256 images (VISSL's PIRL config).
    # No PIRL recipe in contrasting.data: MoCo v2's augmentation for both views.
    "PIRL", optim={"name": "sgd", "lr": 0.12, "weight_decay": 1e-4, "momentum": 0.9},
    recipe="moco_v2", corpus_indices=True, step_cost=1.2, short_run=_short_run, chance_loss=_chance_loss)


@register_method("pirl", PIRLConfig, PIRL_SPEC, paper="Misra & van der Maaten, CVPR 2020",
                 origin="facebookresearch/vissl")
def _pirl(config: PIRLConfig, backbone: ResNet, process_group=None) -> PIRL:
    return PIRL(backbone, config, process_group)
