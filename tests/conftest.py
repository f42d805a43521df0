"""Test-session setup: Triton kernels run in the interpreter on machines without CUDA.

TRITON_INTERPRET must be set before contrasting.losses (and with it @triton.jit) is imported, so it
is set here, when this conftest is imported, unless a CUDA device is present.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
