"""pNLP-Mixer's config nodes: each group option's defaults, taken from its dataclass (core/schema.py)."""

from __future__ import annotations

from typing import Any

from pnlp_bench.core.schema import defaults_of, registry_nodes


def nodes() -> dict[str, dict[str, Any]]:
    from pnlp_bench.mixer.data import loaders  # noqa: F401  (registers every data set)
    from pnlp_bench.mixer.data.base import LOADERS, DataConfig
    from pnlp_bench.mixer.models import BACKBONES
    from pnlp_bench.mixer.models.bottleneck import BottleneckOptions
    from pnlp_bench.mixer.projection import PROJECTIONS
    from pnlp_bench.mixer.quantize import QuantizeConfig
    from pnlp_bench.mixer.trainer import TrainerConfig

    # a data set's node: the fields every data set shares, with its loader's own `options`
    # (`head_options` belong to the head the config picks, so each data set's YAML states them)
    data = {f"data_{name}": defaults_of(DataConfig, name=name, options=defaults_of(LOADERS.config_class(name)))
            for name in LOADERS.names()}
    return {
        "trainer_mixer": defaults_of(TrainerConfig),
        "bottleneck": defaults_of(BottleneckOptions),
        "quantize": defaults_of(QuantizeConfig),
        **registry_nodes(PROJECTIONS, "projection"),
        **registry_nodes(BACKBONES, "backbone"),
        **data,
    }
