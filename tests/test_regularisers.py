"""The regularisers the paper does not state (mixer dropout, word dropout): off by default, training only."""

from __future__ import annotations

import pytest
import torch

from pnlp_bench.mixer.models.bottleneck import PAD, ProjectionBottleneck
from pnlp_bench.mixer.models.mixer import Mixer, MixerConfig
from pnlp_bench.core.registry import ConfigError


def test_mixer_dropout_keeps_the_weights_and_acts_only_in_training():
    torch.manual_seed(0)
    plain = Mixer(MixerConfig(num_layers=2), seq_len=16, dim=32)
    dropped = Mixer(MixerConfig(num_layers=2, dropout=0.3), seq_len=16, dim=32)
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())
    x, mask = torch.randn(4, 16, 32), torch.ones(4, 16, dtype=torch.bool)
    plain.eval(), dropped.eval()
    assert torch.equal(plain(x, mask), dropped(x, mask))
    dropped.train()
    assert not torch.allclose(plain(x, mask), dropped(x, mask))
    plain.train()
    assert torch.equal(plain(x, mask), plain(x, mask))  # without dropout training is deterministic


def test_mixer_dropout_is_validated():
    with pytest.raises(ConfigError, match="dropout must be in"):
        MixerConfig(dropout=1.0).validate("backbone")


def test_word_dropout_blanks_whole_words_in_training_only():
    torch.manual_seed(0)
    bottleneck = ProjectionBottleneck(64, 1, 8, "bag", word_dropout=0.5)
    indices = torch.randint(0, 64, (32, 10, 4))
    indices[:, 7:] = PAD
    bottleneck.eval()
    reference = ProjectionBottleneck(64, 1, 8, "bag")
    reference.load_state_dict(bottleneck.state_dict())
    assert torch.equal(bottleneck(indices), reference(indices))
    bottleneck.train()
    out = bottleneck(indices)
    # A position whose whole window was blanked is exactly the bias; with p = 0.5 some are.
    only_bias = (out[:, 1:6] == bottleneck.bias).all(-1)
    assert only_bias.any() and not only_bias.all()
