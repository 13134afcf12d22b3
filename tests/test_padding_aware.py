"""The padding-aware mixer (backbone.padding_aware) gives the plain model's numbers on every word position:
outputs and gradients, fp32, to 1e-5 relative (float rounding of the reordered sums is all that differs)."""

from __future__ import annotations

import copy

import pytest
import torch

from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck
from pnlp_bench.mixer.models.heads import ClassificationHead, IntentSlotHead
from pnlp_bench.mixer.models.mixer import Mixer, MixerConfig
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.quantize import int8_copy

S, F_SIZE, DIM = 16, 64, 32


def batch(lengths: list[int], per_word: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, F_SIZE, (len(lengths), S, per_word), generator=generator)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]
    return indices.masked_fill(~mask[..., None], PAD), mask


def models(window: int, layers: int, head: str, path: str = "bag", dropout: float = 0.0) -> tuple[PNLPModel, PNLPModel]:
    torch.manual_seed(0)
    heads = {"slots": lambda: IntentSlotHead(DIM, 7, 5), "classification": lambda: ClassificationHead(DIM, 3)}
    plain = PNLPModel(
        ProjectionBottleneck(F_SIZE, window, DIM, path),
        Mixer(MixerConfig(num_layers=layers, token_hidden=24, channel_hidden=40, dropout=dropout, padding_aware=False), S, DIM),
        heads[head](),
    )
    aware = copy.deepcopy(plain)
    aware.backbone.padding_aware = True
    return plain, aware


def word_outputs(outputs: dict[str, torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
    """What the loss and the metrics read: tag logits at word positions, sentence-level logits."""
    return [value[mask] if value.dim() == 3 else value for _, value in sorted(outputs.items())]


@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("head", ["slots", "classification"])
def test_outputs_and_gradients_equal_the_plain_model(window, layers, head):
    plain, aware = models(window, layers, head)
    features, mask = batch([3, 7, 1, 5, 2, 6])
    results = []
    for model in (plain, aware):
        outputs = model(features, mask)
        loss = sum((value * torch.linspace(-1, 1, value.shape[-1])).sum() for value in word_outputs(outputs, mask))
        model.zero_grad()
        loss.backward()
        results.append((word_outputs(outputs, mask), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (plain_out, plain_grads), (aware_out, aware_grads) = results
    for expected, got in zip(plain_out, aware_out):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert plain_grads.keys() == aware_grads.keys()
    for name, expected in plain_grads.items():
        torch.testing.assert_close(aware_grads[name], expected, rtol=1e-5, atol=1e-5, msg=name)


def test_a_row_filling_every_position_and_the_dense_path():
    for path in ("bag", "dense", "words"):
        plain, aware = models(1, 2, "slots", path)
        features, mask = batch([S, 4, 9])
        for expected, got in zip(word_outputs(plain(features, mask), mask), word_outputs(aware(features, mask), mask)):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_the_trimmed_path_really_runs_and_padding_comes_back_as_zeros():
    _, aware = models(1, 2, "slots")
    features, mask = batch([3, 2])
    hidden = aware.bottleneck(features)
    out = aware.backbone(hidden, mask, window=1)
    assert out.shape == hidden.shape
    assert torch.count_nonzero(out[:, 3:]) == 0  # only the longest row's 3 positions were computed
    assert torch.count_nonzero(out[0, :3]) > 0


def test_dropout_still_acts_in_training_and_not_in_evaluation():
    plain, aware = models(1, 2, "slots", dropout=0.3)
    features, mask = batch([3, 7, 1])
    plain.eval(), aware.eval()
    for expected, got in zip(word_outputs(plain(features, mask), mask), word_outputs(aware(features, mask), mask)):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    aware.train()
    first, second = aware(features, mask)["intent_logits"], aware(features, mask)["intent_logits"]
    assert not torch.allclose(first, second)


def test_the_dynamic_int8_copy_runs_the_plain_path():
    _, aware = models(1, 2, "slots")
    features, mask = batch([3, 7, 1])
    quantized, _ = int8_copy(aware, mode="dynamic")
    assert quantized.backbone.padding_aware is False and aware.backbone.padding_aware is True
    assert quantized(features, mask)["tag_logits"].shape == (3, S, 7)


def test_the_heads_see_only_the_longest_rows_positions_and_give_the_plain_logits_everywhere():
    plain, aware = models(1, 2, "slots")
    features, mask = batch([3, 2, 4])
    trimmed = aware.backbone(aware.bottleneck(features), mask, window=1, trim=True)
    assert trimmed.shape[1] == 4  # the longest row
    expected, got = plain(features, mask), aware(features, mask)
    assert got["tag_logits"].shape == expected["tag_logits"].shape
    # past the longest row (no word in any row, never read by the loss or the metrics) the logits are those of a
    # zero vector, the tagger's bias, as when the backbone handed back zeros there
    torch.testing.assert_close(got["tag_logits"][:, 4:], aware.head.tagger.bias.expand(3, S - 4, -1))
    for expected_words, got_words in zip(word_outputs(expected, mask), word_outputs(got, mask)):
        torch.testing.assert_close(got_words, expected_words, rtol=1e-5, atol=1e-5)
