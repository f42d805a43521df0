"""Test-session setup: Triton kernels run in the interpreter on CPU-only machines, `gpu` tests skip there.

TRITON_INTERPRET must be set before contrasting.losses (and with it @triton.jit) is imported, so it is
set here, at conftest import time, unless a CUDA device is present.
"""

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
