"""Every shipped config composes, parses into its typed config and builds on CPU."""

import pytest
from omegaconf import OmegaConf

from pnlp_bench.data.base import DataConfig
from pnlp_bench.data.features import Featurized, LabelSpace
from pnlp_bench.projection import PROJECTIONS
from pnlp_bench.registry import ConfigError, typed_config
from pnlp_bench.run import build_model
from pnlp_bench.training.trainer import TrainerConfig

from helpers import compose_config, group_options

GROUPS = ["model", "backbone", "size", "data", "trainer", "projection"]


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes_and_builds(group, option):
    cfg = compose_config([f"{group}={option}"])
    container = OmegaConf.to_container(cfg, resolve=True)
    data_config = typed_config(DataConfig, container["data"], "data")
    typed_config(TrainerConfig, container["trainer"], "trainer")
    projection_options = dict(container["projection"])
    PROJECTIONS.parse(projection_options.pop("name"), projection_options, "projection")
    labels = LabelSpace(labels=["a", "b"], tags=["O", "B-x"] if data_config.head == "intent_slots" else [])
    model = build_model(cfg, data_config, Featurized(word_table=None, splits={}, labels=labels))
    assert model.parameter_counts()["total"] > 0


def test_size_preset_reaches_projection_and_backbone_and_overrides_win():
    cfg = compose_config(["model=mixer_large", "projection.window=2"])
    assert cfg.projection.feature_size == 2048 and cfg.backbone.num_layers == 4 and cfg.bottleneck.dim == 256
    assert cfg.projection.window == 2


def test_unknown_key_is_named():
    cfg = OmegaConf.to_container(compose_config(["+trainer.epoch=3"]), resolve=True)
    with pytest.raises(ConfigError, match="trainer: unknown key 'epoch'"):
        typed_config(TrainerConfig, cfg["trainer"], "trainer")


def test_bad_values_are_rejected_before_work():
    with pytest.raises(ConfigError, match="window must be >= 0"):
        PROJECTIONS.parse("minhash", {"window": -1}, "projection")
    with pytest.raises(ConfigError, match="unknown projection 'nope'; valid: bert, binary, minhash, simhash, tsp"):
        PROJECTIONS.parse("nope", {}, "projection")
