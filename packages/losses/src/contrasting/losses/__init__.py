"""contrasting.losses: fused contrastive losses that never build the N×M logits matrix.

Functional API: ``info_nce``, ``nt_xent``, ``clip_loss``, ``sinkhorn``, ``swav_loss``; modules: ``InfoNCE``,
``NTXent``, ``CLIPLoss``, ``SwAVLoss``; references (materialised, float64-capable): ``*_reference``, and
``REFERENCES``, which pairs each fused function with its reference (what the tests and benchmarks compare).
"""

from .infonce import clip_loss, info_nce, nt_xent, pairwise_lse, resolve_backend
from .infonce_module import CLIPLoss, InfoNCE, NTXent
from .infonce_reference import clip_loss_reference, info_nce_reference, nt_xent_reference
from .sinkhorn import sinkhorn
from .sinkhorn_reference import sinkhorn_reference, swav_loss_reference
from .swav import SwAVLoss, swav_loss

REFERENCES = {  # name → (fused function, its materialised reference: same math arguments, no backend options)
    "info_nce": (info_nce, info_nce_reference),
    "nt_xent": (nt_xent, nt_xent_reference),
    "clip_loss": (clip_loss, clip_loss_reference),
    "sinkhorn": (sinkhorn, sinkhorn_reference),
    "swav_loss": (swav_loss, swav_loss_reference),
}

__all__ = [
    "REFERENCES",
    "info_nce",
    "nt_xent",
    "clip_loss",
    "pairwise_lse",
    "resolve_backend",
    "InfoNCE",
    "NTXent",
    "CLIPLoss",
    "info_nce_reference",
    "nt_xent_reference",
    "clip_loss_reference",
    "sinkhorn",
    "swav_loss",
    "SwAVLoss",
    "sinkhorn_reference",
    "swav_loss_reference",
]
