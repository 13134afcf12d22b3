"""BiGS's config nodes: each group option's defaults, taken from its dataclass (core/schema.py)."""

from __future__ import annotations

from typing import Any

from pnlp_bench.core.schema import defaults_of


def nodes() -> dict[str, dict[str, Any]]:
    from pnlp_bench.bigs.config import BiGSBackboneConfig, BiGSTrainerConfig
    from pnlp_bench.bigs.data import loaders  # noqa: F401  (registers every data set)
    from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig

    data = {f"data_{name}": defaults_of(TextDataConfig, name=name, options=defaults_of(TEXT_DATA.config_class(name)))
            for name in TEXT_DATA.names()}
    return {"trainer_bigs": defaults_of(BiGSTrainerConfig), "backbone_bigs": defaults_of(BiGSBackboneConfig), **data}
