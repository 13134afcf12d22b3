"""The config groups of `bench run` (conf/README.md). Hydra imports this package to read them, so the
defaults every YAML option builds on, owned by the dataclasses, are stored here first (core/schema.py)."""

from pnlp_bench.bigs import schemas as bigs_schemas
from pnlp_bench.core import schema
from pnlp_bench.mixer import schemas as mixer_schemas

schema.store(schema.core_nodes(), mixer_schemas.nodes(), bigs_schemas.nodes())
