"""What `bench speed` times: its size presets and data sets, the training examples it loads (IMDB from the
raw text), and the projections, featurized data and models it builds, as `bench run` builds them."""

from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pnlp_bench.core.paths import asset, data_dir_candidates
from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import DataConfig, Example
from pnlp_bench.mixer.data.features import Featurized
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.text import words_of
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.mixer.projection.minhash import MinHashProjection

if TYPE_CHECKING:
    from pnlp_bench.commands.speed.bench import SpeedConfig

PRESETS = ("xs", "small", "base", "large", "xlarge")
PRESET_NAMES = {"xs": "X-SMALL", "small": "SMALL", "base": "BASE", "large": "LARGE", "xlarge": "X-LARGE"}
MULTIATIS_LANGUAGES = ["en", "es", "pt", "de", "fr", "zh", "ja", "hi", "tr"]
# Data sets the benchmark knows, with their head (training split only: multiATIS++ train, IMDB train).
# `mtop_sample` (shipped in the package) lets the benchmark run where the shared data is absent (tests).
DATASETS = {
    "multiatis": {"head": "intent_slots"},
    "imdb": {"head": "classification"},
    "mtop_sample": {"head": "intent_slots"},
}
IMDB_TRAIN_DOCUMENTS = 25_000  # the IMDB training split, whole (the featurization target is about all of it)


# ---------------------------------------------------------------- text


# IMDB raw text, read here rather than through the IMDB loader (`data=imdb`): the loader caches its parsed
# words, and the featurization figure must time the pre-tokenization of raw text. The words come from the
# loader's own rule (`pnlp_bench/mixer/data/text.py: words_of`), so both see the same words.


def imdb_documents(limit: int) -> list[tuple[str, str]]:
    """(raw text, label) of the first `limit` (0 = all) IMDB training reviews, spread over both polarities."""
    for base in data_dir_candidates():
        path = base / "imdb" / "train.jsonl.gz"
        if path.exists():
            break
    else:
        looked = ", ".join(str(base / "imdb") for base in data_dir_candidates())
        raise DataError(f"IMDB not found (looked for train.jsonl.gz in: {looked})")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    documents = [(row["text"], "pos" if row["label"] == 1 else "neg") for row in rows]
    if limit and limit < len(documents):
        # The file holds all negative reviews, then all positive ones: take evenly spaced documents.
        documents = [documents[index] for index in np.linspace(0, len(documents) - 1, limit).astype(int)]
    return documents


def imdb_words(text: str) -> list[str]:
    """Whitespace and punctuation pre-tokenization of running text, `<br />` removed (the IMDB loader's rule)."""
    return words_of(text)


def load_examples(name: str, config: SpeedConfig) -> tuple[list[Example], list[str] | None]:
    """Training examples of a data set, and for IMDB the raw texts they were split from."""
    if name == "multiatis":
        return load_data(DataConfig(name="multiatis", languages=list(config.languages))).splits["train"], None
    if name == "mtop_sample":
        loaded = load_data(DataConfig(name="mtop", root=str(asset("mtop_sample")), languages=["en"]))
        return loaded.splits["train"], None
    documents = imdb_documents(config.documents)
    texts = [text for text, _ in documents]
    examples = [Example(uid=str(i), lang="en", words=imdb_words(text), label=label) for i, (text, label) in enumerate(documents)]
    return examples, texts


# ---------------------------------------------------------------- models


def preset_config(preset: str) -> DictConfig:
    """The config `bench run model=mixer_<preset>` composes (projection, bottleneck, backbone)."""
    from pnlp_bench.core.compose import compose

    return compose([f"model=mixer_{preset}"])


class Models:
    """Projections (one per F), featurized data (one per data set and F) and models, built as `bench run` does."""

    def __init__(self) -> None:
        self.configs: dict[str, DictConfig] = {}
        self.projections: dict[tuple, MinHashProjection] = {}

    def config(self, preset: str) -> DictConfig:
        if preset not in self.configs:
            self.configs[preset] = preset_config(preset)
        return self.configs[preset]

    def projection(self, preset: str) -> MinHashProjection:
        options = OmegaConf.to_container(self.config(preset).projection, resolve=True)
        key = tuple(sorted(options.items()))  # type: ignore[union-attr]
        if key not in self.projections:
            name = options.pop("name")  # type: ignore[union-attr]
            self.projections[key] = PROJECTIONS.build(name, options, "projection")  # type: ignore[arg-type]
        return self.projections[key]

    def window(self, preset: str) -> int:
        return int(self.config(preset).projection.window)

    def model(self, preset: str, dataset: str, seq_len: int, data: Featurized) -> PNLPModel:
        from pnlp_bench.mixer.pipeline import build_model

        data_config = DataConfig(name=dataset, max_length=seq_len, head=DATASETS[dataset]["head"])
        return build_model(self.config(preset), data_config, data)
