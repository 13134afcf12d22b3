import pytest

from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import Featurized, LabelSpace
from pnlp_bench.mixer.pipeline import build_model

from helpers import compose_config

# docs/pnlp_mixer.md: bottleneck with bias + mixer blocks + token head Linear(B -> 151 BIO labels), S = 64.
COMPUTED = {"xs": 208_279, "small": 632_599, "base": 1_156_887, "large": 2_274_711, "xlarge": 4_415_895}
PAPER = {"xs": 200_000, "small": 630_000, "base": 1_200_000, "large": 2_300_000, "xlarge": 4_400_000}


def mtop_like_model(preset: str):
    cfg = compose_config([f"model=mixer_{preset}", "data=mtop"])
    labels = LabelSpace(labels=[f"IN:{i}" for i in range(113)], tags=[f"T{i}" for i in range(151)])
    data = Featurized(word_table=None, splits={}, labels=labels)
    return build_model(cfg, DataConfig(name="mtop", max_length=64), data)


@pytest.mark.parametrize("preset", list(COMPUTED))
def test_preset_parameter_counts_match_the_paper(preset):
    counts = mtop_like_model(preset).parameter_counts()
    assert counts["paper_comparable"] == COMPUTED[preset]
    # The paper rounds its counts; the inferred configurations land within 4.2% of the rounded figures.
    assert abs(counts["paper_comparable"] - PAPER[preset]) / PAPER[preset] < 0.042
    # The intent head (attention pooling + Linear(B -> 113)), which the paper's counts leave out, adds under 5%.
    assert counts["paper_comparable"] < counts["total"] < 1.05 * counts["paper_comparable"]
