"""Non-trainable projections of words into sparse features; importing registers each of them."""

from pnlp_bench.projection import minhash  # noqa: F401  (registers "minhash")
from pnlp_bench.projection.base import PROJECTIONS, Projection, WordFeatures

__all__ = ["PROJECTIONS", "Projection", "WordFeatures"]
