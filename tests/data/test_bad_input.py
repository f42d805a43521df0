"""Bad input: unreadable files follow ``on_error``; odd but decodable images decode as PIL's RGB in both
executors; nothing hangs, no epoch is silently shortened."""

import shutil

import numpy as np
import nvidia.dali.fn as fn
import nvidia.dali.types as types
import pytest
import torch
from nvidia.dali import pipeline_def
from PIL import Image

from contrasting.data import (
    FileListSource,
    ImageFolderSource,
    Recipe,
    UnreadableImageError,
    View,
    make_loader,
    scan_source,
)
from contrasting.data.executors.torchvision_backend import decode
from contrasting.data.recipes import ColorJitter, HorizontalFlip
from contrasting.data.sources import pil_rgb, read_encoded
from tests.data.helpers import TOL_MEAN, max_normalised_diff, smooth_image

RESIZE = Recipe("resize48", (View(48, crop="resize"),))
BACKENDS = [dict(backend="dali", device="cpu"), dict(backend="torchvision", num_workers=0)]


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """One class of decodable odd images and one of unusable files."""
    root = tmp_path_factory.mktemp("odd")
    good, bad = root / "good", root / "bad"
    good.mkdir()
    bad.mkdir()
    rng = np.random.default_rng(0)
    a = smooth_image(rng, 40, 56)
    Image.fromarray(a).save(good / "rgb.jpg", quality=95)
    Image.fromarray(a).convert("L").save(good / "gray.jpg", quality=95)
    Image.fromarray(a).convert("CMYK").save(good / "cmyk.jpg", quality=95)
    alpha = (rng.random((40, 56, 1)) * 255).astype(np.uint8)
    Image.fromarray(np.concatenate([a, alpha], -1), "RGBA").save(good / "rgba.png")
    Image.fromarray(a).convert("P", palette=Image.ADAPTIVE).save(good / "palette.png")
    Image.fromarray(a[..., 0].astype(np.uint16) * 257).save(good / "gray16.png")  # transcoded
    Image.fromarray(a).save(good / "rgb.bmp")  # transcoded (torchvision cannot decode BMP)
    Image.fromarray(smooth_image(rng, 20, 20)).save(good / "tiny.jpg", quality=95)  # smaller than the crop
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise: decoded as 56 x 40
    Image.fromarray(a).save(good / "exif6.jpg", quality=95, exif=exif.tobytes())
    data = (good / "rgb.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (bad / "text.jpg").write_text("this is not a JPEG\n")
    (bad / "empty.jpg").write_bytes(b"")
    return root


def test_raise_names_every_unreadable_file(odd_folder):
    with pytest.raises(UnreadableImageError) as info:
        scan_source(ImageFolderSource(odd_folder))
    msg = str(info.value)
    for name, reason in [("truncated.jpg", "truncated JPEG"), ("text.jpg", "identify"), ("empty.jpg", "empty")]:
        assert str(odd_folder / "bad" / name) in msg and reason in msg
    assert len(info.value.rejected) == 3


def test_file_list_with_missing_files(odd_folder, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text(f"{odd_folder}/good/rgb.jpg,0\n{odd_folder}/good/nope.jpg,1\n")
    with pytest.raises(UnreadableImageError, match="nope.jpg: missing file"):
        make_loader(RESIZE, FileListSource(lst), 2, backend="torchvision", num_workers=0)
    loader = make_loader(RESIZE, FileListSource(lst), 2, backend="torchvision", num_workers=0, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        batches = list(loader)
    assert sum(len(b.indices) for b in batches) == 1 and loader.last_report.skipped == 1


def test_decodable_odd_images_are_pils_rgb(odd_folder):
    """DALI's decoder (on the bytes it is fed: the file, or PIL's PNG for transcoded formats) gives PIL's RGB."""
    cat = scan_source(ImageFolderSource(odd_folder), on_error="skip")
    assert len(cat.rejected) == 3
    encoded = [read_encoded(p, bool(t)) for p, t in zip(cat.paths, cat.transcode, strict=True)]

    @pipeline_def
    def decode_only():
        return fn.decoders.image(fn.external_source(source=lambda: encoded, batch=True), device="cpu",
                                 output_type=types.RGB)

    pipe = decode_only(batch_size=len(encoded), num_threads=1, device_id=None)
    pipe.build()
    (out,) = pipe.run()
    for row, path in enumerate(cat.paths):
        ref = np.array(pil_rgb(path))
        ours = np.array(out[row])
        assert ours.shape == ref.shape == (*cat.sizes[row], 3), path
        assert np.abs(ours.astype(int) - ref).max() <= 1, path
        assert torch.equal(decode(path), torch.from_numpy(ref).permute(2, 0, 1))
    assert bool(cat.transcode[[p.endswith(("gray16.png", ".bmp")) for p in cat.paths]].all())


@pytest.mark.parametrize("kw", BACKENDS, ids=lambda k: k["backend"])
def test_skip_policy_runs_full_epochs_and_reports(odd_folder, kw):
    ops = (HorizontalFlip(), ColorJitter(0.4, 0.4, 0.4, 0.1))
    recipe = Recipe("small", (View(96, count=2, scale=(0.08, 1.0), ops=ops),))
    loader = make_loader(recipe, ImageFolderSource(odd_folder), 4, on_error="skip", **kw)
    for epoch in range(2):
        with pytest.warns(UserWarning, match=f"epoch {epoch}: skipped 3 unreadable"):
            batches = list(loader)
        assert sum(len(b.indices) for b in batches) == 9  # every decodable image, once
        assert all(v.shape[1:] == (3, 96, 96) for b in batches for v in b.views)
        assert loader.last_report.skipped == 3 and loader.last_report.complete


def test_both_executors_agree_on_odd_images(odd_folder):
    cat = scan_source(ImageFolderSource(odd_folder), on_error="skip")
    with pytest.warns(UserWarning, match="skipped 3"):
        outs = [list(make_loader(RESIZE, cat, 16, shuffle=False, **kw)) for kw in BACKENDS]
    (d,), (t,) = outs
    assert torch.equal(d.indices, t.indices)
    mean, _ = max_normalised_diff(d.views[0], t.views[0])
    assert mean < TOL_MEAN


@pytest.mark.parametrize("kw", BACKENDS, ids=lambda k: k["backend"])
def test_file_broken_after_the_scan_raises_with_its_path(odd_folder, tmp_path, kw):
    root = tmp_path / "copy"
    shutil.copytree(odd_folder / "good", root / "good")
    cat = scan_source(ImageFolderSource(root))
    victim = root / "good" / "rgb.jpg"
    victim.write_bytes(b"\xff\xd8 garbage that is no longer a JPEG \xff\xd9")
    loader = make_loader(RESIZE, cat, 4, shuffle=False, **kw)
    with pytest.raises(RuntimeError, match="rgb.jpg"):
        list(loader)
