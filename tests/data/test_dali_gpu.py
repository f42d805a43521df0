"""The DALI GPU pipeline (mixed decoding): same batches and parameters as the CPU pipeline and torchvision,
tensors on the GPU. Skipped without CUDA (root conftest)."""

import pytest
import torch

from contrasting.data import ImageFolderSource, get_recipe, make_loader, scan_source
from tests.data.helpers import TOL_MEAN, TOL_OUTLIER, make_folder, max_normalised_diff

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return scan_source(ImageFolderSource(make_folder(tmp_path_factory.mktemp("gpu"), per_class=4)))


@pytest.mark.parametrize("name, kw", [("simclr", dict(size=48)), ("byol", dict(size=48)),
                                      ("swav", dict(global_size=48, local_size=24)), ("eval_center", dict(size=32))])
def test_gpu_pipeline_matches_the_reference(folder, name, kw):
    recipe = get_recipe(name, **kw)
    gpu = list(make_loader(recipe, folder, 6, backend="dali", device="gpu", seed=1))
    ref = list(make_loader(recipe, folder, 6, backend="torchvision", num_workers=0, seed=1))
    for g, t in zip(gpu, ref, strict=True):
        assert torch.equal(g.indices, t.indices)
        for a, b in zip(g.views, t.views, strict=True):
            assert a.is_cuda
            mean, out = max_normalised_diff(a.cpu(), b)
            assert mean <= TOL_MEAN and out <= TOL_OUTLIER, f"{name}: {mean:.4f} {out:.4f}"


def test_auto_device_is_the_gpu(folder):
    loader = make_loader(get_recipe("eval_resize", size=32), folder, 4, backend="auto")
    assert loader.backend == "dali" and loader.device == "gpu"
    assert next(iter(loader)).views[0].is_cuda
