"""Sources: layouts, file lists (relative paths, labels, headers), arrays, pair lists; their contract errors."""

import numpy as np
import pytest

from contrasting.data.sources import (
    ArraySource,
    FileListSource,
    ImageFolderSource,
    PairListSource,
    scan_source,
    write_file_list,
    write_pair_list,
)
from tests.data.helpers import make_folder, write_images


def test_image_folder_sorted_classes_and_labels(tmp_path):
    make_folder(tmp_path / "root", classes=("zebra", "ant"), per_class=2)
    write_images(tmp_path / "root" / "ant" / "nested", 1, prefix="deep")
    (tmp_path / "root" / "ant" / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path / "root")
    assert src.classes == ["ant", "zebra"]
    assert len(src) == 5
    labels = [lab for _, lab in src.samples]
    assert labels == [0, 0, 0, 1, 1]
    assert any("nested" in p for p, _ in src.samples)
    assert not any(p.endswith(".txt") for p, _ in src.samples)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderSource(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        ImageFolderSource(tmp_path / "empty")
    (tmp_path / "empty" / "cls").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        ImageFolderSource(tmp_path / "empty")


def test_file_list_round_trip_relative_to_root(tmp_path):
    make_folder(tmp_path / "corpus", per_class=2)
    src = ImageFolderSource(tmp_path / "corpus")
    lst = write_file_list(tmp_path / "lists" / "all.txt", src.samples, root=tmp_path / "corpus", classes=src.classes,
                          header="made by a test")
    text = lst.read_text()
    assert text.startswith("# made by a test\n# classes:") and str(tmp_path) not in text
    back = FileListSource(lst, root=tmp_path / "corpus")
    assert back.samples == src.samples and back.classes == src.classes
    # without root, relative paths resolve against the list's folder
    lst2 = write_file_list(tmp_path / "corpus" / "list.txt", src.samples, root=tmp_path / "corpus")
    assert FileListSource(lst2).samples == src.samples


def test_file_list_unlabelled_comments_and_errors(tmp_path):
    (tmp_path / "a.txt").write_text("# comment\n\nx.jpg\nsub/y.jpg\n")
    src = FileListSource(tmp_path / "a.txt")
    assert src.samples == [(str(tmp_path / "x.jpg"), None), (str(tmp_path / "sub" / "y.jpg"), None)]
    (tmp_path / "b.txt").write_text("x.jpg,3\ny.jpg,cat\n")
    with pytest.raises(ValueError, match=r"b.txt:2: label 'cat'"):
        FileListSource(tmp_path / "b.txt")
    (tmp_path / "c.txt").write_text("x.jpg,3\ny.jpg\n")
    with pytest.raises(ValueError, match="mixes labelled"):
        FileListSource(tmp_path / "c.txt")
    (tmp_path / "d.txt").write_text("# only comments\n")
    with pytest.raises(ValueError, match="lists no files"):
        FileListSource(tmp_path / "d.txt")
    with pytest.raises(FileNotFoundError):
        FileListSource(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="comma"):
        write_file_list(tmp_path / "e.txt", [("a,b.jpg", 1)])


def test_array_source_contract():
    imgs = np.zeros((3, 8, 9, 3), np.uint8)
    src = ArraySource(imgs, labels=[2, 0, 1])
    assert len(src) == 3 and src.samples[0] == (0, 2)
    cat = scan_source(src)
    assert cat.is_array and cat.sizes.tolist() == [[8, 9]] * 3
    with pytest.raises(ValueError, match="uint8"):
        ArraySource(imgs.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        ArraySource(np.zeros((3, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="labels"):
        ArraySource(imgs, labels=[1, 2])
    with pytest.raises(ValueError, match="targets"):
        ArraySource(imgs, targets=np.zeros((3, 8, 8), np.uint8))


def test_pair_list(tmp_path):
    (tmp_path / "p.txt").write_text("img/a.png,mask/a.png\n")
    src = PairListSource(tmp_path / "p.txt")
    assert src.samples == [(str(tmp_path / "img/a.png"), str(tmp_path / "mask/a.png"))]
    (tmp_path / "q.txt").write_text("img/a.png\n")
    with pytest.raises(ValueError, match="q.txt:1"):
        PairListSource(tmp_path / "q.txt")
    out = write_pair_list(tmp_path / "r.txt", src.samples, root=tmp_path)
    assert out.read_text() == "img/a.png,mask/a.png\n"
