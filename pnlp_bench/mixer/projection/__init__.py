"""Non-trainable projections of words into sparse features; importing registers each of them."""

from pnlp_bench.mixer.projection import bert, binary, embedding, minhash, simhash, tsp  # noqa: F401  (registration)
from pnlp_bench.mixer.projection.base import PROJECTIONS, Projection, WordFeatures

__all__ = ["PROJECTIONS", "Projection", "WordFeatures"]
