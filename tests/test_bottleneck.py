import pytest
import torch

from pnlp_bench.models.bottleneck import PAD, ProjectionBottleneck, dense_counts


def reference_linear(bottleneck: ProjectionBottleneck) -> torch.nn.Linear:
    linear = torch.nn.Linear(bottleneck.in_dim, bottleneck.out_dim)
    with torch.no_grad():
        linear.weight.copy_(bottleneck.weight.T)
        linear.bias.copy_(bottleneck.bias)
    return linear


@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("path", ["bag", "dense"])
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
