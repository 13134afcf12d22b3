"""Models; importing registers every backbone and head."""

from pnlp_bench.mixer.models import heads, identity, lstm, mixer, transformer  # noqa: F401  (registration)
from pnlp_bench.mixer.models.registry import BACKBONES, HEADS

__all__ = ["BACKBONES", "HEADS"]
