"""The defaults of every config node live in its dataclass; the YAML options state only what differs.

Each option of a typed group names its dataclass's node (`- /schema_<group>_<option>@_here_`, core/schema.py)
or builds on another option of its group that does; no option repeats a value its node already gives; and
what `bench run` composes with no overrides is the dataclasses' defaults wherever no YAML says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

import pnlp_bench.conf  # noqa: F401  (stores the schema nodes)
from pnlp_bench.core.compose import compose, options
from pnlp_bench.core.schema import PREFIX, defaults_of

CONF = Path(pnlp_bench.conf.__file__).parent
TYPED_GROUPS = ("projection", "backbone", "data", "logger", "trainer")


def schema_node(name: str) -> dict:
    return OmegaConf.to_container(ConfigStore.instance().repo[f"{PREFIX}{name}.yaml"].node)  # type: ignore[return-value]


def schema_entries(config: dict) -> list[tuple[str, str | None]]:
    """The schema nodes a YAML option names: (node name, the package it lands in; None: the option's own)."""
    found = []
    for entry in config.get("defaults", []):
        if isinstance(entry, str) and entry.lstrip("/").startswith(PREFIX):
            path, _, package = entry.lstrip("/").partition("@")
            found.append((path[len(PREFIX):], None if package in ("", "_here_") else package))
    return found


def options_of(group: str) -> list[Path]:
    return sorted((CONF / group).glob("*.yaml"))


def repeated(config: dict, node: dict, prefix: str = "") -> list[str]:
    same = []
    for key, value in config.items():
        if key == "defaults" or key not in node:
            continue
        if isinstance(value, dict) and isinstance(node[key], dict) and value:
            same += repeated(value, node[key], f"{prefix}{key}.")
        elif value == node[key]:
            same.append(prefix + key)
    return same


@pytest.mark.parametrize("path", [path for group in TYPED_GROUPS for path in options_of(group)] + [CONF / "config.yaml"],
                         ids=lambda path: str(path.relative_to(CONF)))
def test_no_option_repeats_a_default_of_its_dataclass(path: Path):
    config = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    entries = schema_entries(config)
    group = path.parent.name
    inherits = [entry for entry in config.get("defaults", []) if isinstance(entry, str) and (CONF / group / f"{entry}.yaml").exists()]
    if path.name != "config.yaml":
        assert entries or inherits, f"{group}/{path.name} names no schema_ node and builds on no other {group}/ option"
    for name, package in entries:
        here = config.get(package, {}) if package else config
        same = repeated(here, schema_node(name))
        assert not same, f"{path.relative_to(CONF)} repeats the defaults of {PREFIX}{name}: {', '.join(same)}"


def test_the_default_run_is_the_dataclasses_defaults():
    from pnlp_bench.core.schema import RunOptions
    from pnlp_bench.mixer.quantize import QuantizeConfig
    from pnlp_bench.mixer.trainer import TrainerConfig

    resolved = options(compose([]))
    assert resolved["trainer"] == defaults_of(TrainerConfig)  # the paper's protocol, stated once in code
    assert resolved["quantize"] == defaults_of(QuantizeConfig)
    for key, value in defaults_of(RunOptions).items():
        if key != "output_root":  # interpolated from BENCH_OUTPUT_ROOT
            assert resolved[key] == value, key


def test_a_bigs_run_gets_the_bigs_dataclasses_defaults():
    from pnlp_bench.bigs.config import BiGSBackboneConfig, BiGSTrainerConfig

    resolved = options(compose(["model=bigs_tiny"]))
    assert resolved["trainer"] == defaults_of(BiGSTrainerConfig)  # the authors' GLUE recipe
    tiny = {"depth", "num_layers", "width", "intermediate_size", "max_position_embeddings"}  # what bigs.yaml states
    expected = {key: value for key, value in defaults_of(BiGSBackboneConfig).items() if key not in tiny}
    assert {key: resolved["backbone"][key] for key in expected} == expected


def test_every_key_of_a_dataclass_can_be_overridden_without_a_plus():
    """The node puts every field in the composed config, so `trainer.weight_decay=0.1` needs no `+`."""
    cfg = compose(["backbone.dropout=0.1", "data.options.eval_size=100", "data=imdb"])
    assert cfg.backbone.dropout == 0.1 and cfg.data.options.eval_size == 100


def test_a_schema_node_is_defined_once():
    from pnlp_bench.core import schema

    with pytest.raises(ValueError, match="defined twice"):
        schema.store({"x_twice": {}}, {"x_twice": {}})
