"""The weighted kNN monitor used to compare pre-trained and random encoders."""

from __future__ import annotations

import pytest
import torch

from contrasting.encoders.training.knn import knn_accuracy


def test_separable_clusters_are_classified_exactly():
    g = torch.Generator().manual_seed(0)
    centres = torch.eye(4) * 10
    train_y = torch.arange(4).repeat_interleave(10)
    test_y = torch.arange(4).repeat_interleave(5)
    train_x = centres[train_y] + torch.randn(40, 4, generator=g)
    test_x = centres[test_y] + torch.randn(20, 4, generator=g)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 1.0
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=200, chunk=3) == 1.0  # k capped, chunks agree


def test_votes_are_similarity_weighted():
    train_x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    train_y = torch.tensor([0, 1, 1])
    # the test point is nearest to class 0's single example; two farther class-1 examples lose at T = 0.07
    assert knn_accuracy(train_x, train_y, torch.tensor([[1.0, 0.3]]), torch.tensor([0]), k=3) == 1.0
    with pytest.raises(ValueError, match="k"):
        knn_accuracy(train_x, train_y, train_x, train_y, k=0)
