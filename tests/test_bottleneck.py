import pytest
import torch

from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck, dense_counts


def reference_linear(bottleneck: ProjectionBottleneck) -> torch.nn.Linear:
    linear = torch.nn.Linear(bottleneck.in_dim, bottleneck.out_dim)
    with torch.no_grad():
        linear.weight.copy_(bottleneck.weight.T)
        linear.bias.copy_(bottleneck.bias)
    return linear


@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("path", ["bag", "dense", "words"])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_paths_equal_dense_linear_over_counts(window, path, weighted):
    torch.manual_seed(window)
    feature_size, per_word = 32, 6
    indices = torch.randint(0, feature_size, (3, 7, per_word))
    indices[0, 5:] = PAD
    indices[2, 1:] = PAD
    indices[1, 2, :3] = indices[1, 2, 3:]  # duplicate buckets must add up like counts
    values = torch.randn(3, 7, per_word) if weighted else None
    bottleneck = ProjectionBottleneck(feature_size, window, 8, path).double()
    expected = reference_linear(bottleneck).double()(dense_counts(indices, window, feature_size, values).double())
    got = bottleneck(indices, None if values is None else values.double())
    torch.testing.assert_close(got, expected)
    # Gradients agree too, which is what training relies on.
    got.square().sum().backward()
    reference = reference_linear(bottleneck).double()
    reference(dense_counts(indices, window, feature_size, values).double()).square().sum().backward()
    torch.testing.assert_close(bottleneck.weight.grad, reference.weight.grad.T)
    torch.testing.assert_close(bottleneck.bias.grad, reference.bias.grad)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_words_path_under_bf16_autocast_is_the_linear_with_bf16_weights(window):
    """Under bf16 autocast the words path multiplies exact integer counts by the bf16-rounded weight with fp32
    accumulation (what autocast does for any Linear); positions with no word in their window hold the bias;
    a word blanked in the middle of a row (word dropout) contributes nothing but keeps its neighbours' windows."""
    torch.manual_seed(window)
    feature_size, per_word = 64, 8
    indices = torch.randint(0, feature_size, (4, 12, per_word))
    indices[0, 7:] = PAD
    indices[1, 3] = PAD  # a blanked word inside the row
    indices[1, 6:] = PAD
    indices[3, 1:] = PAD
    bottleneck = ProjectionBottleneck(feature_size, window, 16, "words")
    rounded = reference_linear(bottleneck)
    with torch.no_grad():
        rounded.weight.copy_(rounded.weight.bfloat16().float())
    expected = rounded(dense_counts(indices, window, feature_size))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = bottleneck(indices)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, rtol=1e-2, atol=1e-2)
    far = dense_counts(indices, window, feature_size).sum(-1) == 0  # no word inside the window
    torch.testing.assert_close(got.float()[far], bottleneck.bias.bfloat16().float().expand(int(far.sum()), -1))


def test_auto_path_follows_device_and_autocast():
    bottleneck = ProjectionBottleneck(16, 1, 4)
    assert bottleneck.resolved_path(torch.device("cpu")) == "bag"
    # a projection with a value per bucket (Binary, SimHash, TSP): one matmul per word, not a bag of F rows
    assert bottleneck.resolved_path(torch.device("cpu"), weighted=True) == "words"
    assert bottleneck.resolved_path(torch.device("cuda"), weighted=True) == "dense"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert bottleneck.resolved_path(torch.device("cpu")) == "words"
    assert bottleneck.resolved_path(torch.device("cuda")) == "dense"
