"""Every shipped config composes, parses into its typed config and builds on CPU."""

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from pnlp_bench.bigs.checkpoints import build_for_task
from pnlp_bench.bigs.pipeline import bigs_options, parse_configs
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import Featurized, LabelSpace
from pnlp_bench.bigs.data.loaders import is_text_data
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.core.registry import ConfigError, typed_config
from pnlp_bench.mixer.pipeline import build_model
from pnlp_bench.mixer.trainer import TrainerConfig

from helpers import compose_config, group_options

GROUPS = ["model", "backbone", "size", "data", "trainer", "projection", "arch", "routing", "task"]
BIGS_GROUPS = {"arch", "routing", "task"}  # only composed under a BiGS backbone


def needs_bigs(group: str, option: str) -> bool:
    """Options that only a BiGS run reads: compose them with backbone=bigs."""
    if group in BIGS_GROUPS:
        return True
    if group not in ("data", "trainer"):
        return False
    node = compose_config([f"{group}={option}"])[group]  # as composed: the YAML states only what differs
    if group == "data":
        return is_text_data(node.name)
    # keys beyond pNLP's TrainerConfig: a BiGS recipe
    return not set(node) <= {field.name for field in dataclasses.fields(TrainerConfig)}
    return False


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes_and_builds(group, option):
    overrides = [f"{group}={option}"]
    if needs_bigs(group, option) and group != "task":
        overrides.insert(0, "backbone=bigs")
    cfg = compose_config(overrides)
    if cfg.backbone.name == "bigs":
        data_config, backbone, _ = parse_configs(bigs_options(cfg))
        with torch.device("meta"):  # shapes only: the large preset would take seconds to initialise
            model = build_for_task(backbone.bigs_config(vocab_size=30522), "classification", 2)
        assert backbone.max_position_embeddings >= data_config.max_length
        assert sum(p.numel() for p in model.parameters()) > 0
        return
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
    with pytest.raises(ConfigError, match="unknown projection 'nope'; valid: bert, binary, embedding, minhash, simhash, tsp"):
        PROJECTIONS.parse("nope", {}, "projection")


def test_bigs_backbone_picks_its_data_and_recipe_and_the_command_line_wins():
    cfg = compose_config(["backbone=bigs"])
    assert cfg.data.name == "sst2" and cfg.trainer.lr == 2e-5 and cfg.backbone.num_layers == 2
    cfg = compose_config(["backbone=bigs", "data=cola", "trainer=smoke", "arch=stack", "routing=attention"])
    assert cfg.data.name == "cola" and cfg.trainer.epochs == 2 and cfg.backbone.arch == "stack"
    assert cfg.backbone.num_layers == 2 and cfg.backbone.intermediate_size == 512  # stack: depth 2, width 4d
    pretraining = compose_config(["task=mlm", "model=bigs_small", "routing=attention"])
    assert pretraining.data.name == "wikitext2" and pretraining.trainer.max_steps == 10000
    assert pretraining.backbone.num_layers == 5 and pretraining.backbone.hidden_size == 512
    assert compose_config([]).backbone.name == "mixer"  # the default stays pNLP-Mixer


def test_bigs_rejects_a_pnlp_data_set_with_one_line():
    cfg = compose_config(["backbone=bigs", "data=mtop_sample"])
    with pytest.raises(ConfigError, match="data=mtop is a pNLP-Mixer data set; backbone=bigs runs on .*sst2"):
        bigs_options(cfg)
    cfg = compose_config(["backbone=bigs", "+backbone.num_layer=3"])
    with pytest.raises(ConfigError, match="backbone: unknown key 'num_layer'"):
        parse_configs(bigs_options(cfg))


@pytest.mark.parametrize("preset", ["bigs_tiny", "bigs_mini", "bigs_small"])
def test_bigs_presets_resolve_whole_as_cfg_job_resolve_prints_them(preset):
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(compose_config([f"model={preset}", "task=mlm"]), resolve=True)
    assert resolved["projection"] is None and resolved["bottleneck"]["dim"] is None
    assert resolved["backbone"]["name"] == "bigs"
