"""The DALI GPU pipeline: its JPEG decoder against PIL's, and the automatic device choice. Every recipe and
fixed-parameter agreement test runs on the GPU too (``test_equivalence.py``, ``device="gpu"``). Skipped
without CUDA (root conftest)."""

import numpy as np
import pytest

from contrasting.data import ImageFolderSource, get_recipe, make_loader, scan_source
from tests.data.helpers import decode_dali, decode_reference, make_folder

pytestmark = pytest.mark.gpu

# GPU (mixed) decoding with libjpeg-turbo's chroma upsampling vs PIL, in uint8 levels
DECODE_MEAN = 0.5  # mean |Δ|
DECODE_OFF = 0.005  # fraction of values off by more than 4 levels


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return scan_source(ImageFolderSource(make_folder(tmp_path_factory.mktemp("gpu"), per_class=4)))


def test_gpu_decoder_matches_pil(folder, record_property):
    paths = [str(p) for p in folder.paths]
    diffs = np.concatenate([
        np.abs(g.astype(np.int16) - decode_reference(p).astype(np.int16)).ravel()
        for g, p in zip(decode_dali(paths, "gpu", fancy_upsampling=True), paths, strict=True)])
    mean, off = float(diffs.mean()), float((diffs > 4).mean())
    record_property("mean_levels", mean)
    record_property("off_by_more_than_4", off)
    record_property("max_levels", int(diffs.max()))
    assert mean <= DECODE_MEAN and off <= DECODE_OFF, f"mean |Δ| {mean:.3f} levels, {off:.4f} off by > 4"


def test_auto_device_is_the_gpu(folder):
    loader = make_loader(get_recipe("eval_resize", size=32), folder, 4, backend="auto")
    assert loader.backend == "dali" and loader.device == "gpu"
    assert next(iter(loader)).views[0].is_cuda
