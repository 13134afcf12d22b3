"""`data.monitor_language`: a model trained on pooled languages is selected on one eval language."""

from __future__ import annotations

import pytest

import pnlp_bench.mixer.pipeline as run_module
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.store import config_hash

from helpers import compose_config

TINY = ["model=mixer_xs", "data.train_limit=64", "data.eval_limit=32", "data.test_limit=32", "trainer.epochs=3", "quiet=true"]


def rigged_scorer(monkeypatch):
    """The real scores, with the average rigged to fall each epoch and English to rise."""
    real, calls = run_module.scorer, []

    def scorer(head):
        score = real(head)

        def rigged(examples, predictions):
            result = score(examples, predictions)
            calls.append(None)
            result["avg"]["exact_match"] = 100.0 - 10 * len(calls)
            result["en"]["exact_match"] = 10.0 * len(calls)
            return result

        return rigged

    monkeypatch.setattr(run_module, "scorer", scorer)


@pytest.mark.parametrize(("language", "best_epoch"), [(None, 1), ("en", 3)])
def test_selection_follows_the_monitored_language(monkeypatch, tmp_path, language, best_epoch):
    rigged_scorer(monkeypatch)
    overrides = [*TINY, f"output_root={tmp_path}", *([f"data.monitor_language={language}"] if language else [])]
    record = run_module.run_mixer(compose_config(overrides), tmp_path / "run")
    assert record["best_epoch"] == best_epoch
    assert record["monitor_language"] == (language or "avg")
    # each epoch says where its time went: the training steps and the eval pass apart
    assert all(epoch["train_seconds"] > 0 and epoch["eval_seconds"] > 0 for epoch in record["history"])


def test_an_unknown_monitor_language_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"data.monitor_language='de' is not one of data.languages \['en'\]"):
        run_module.run_mixer(compose_config([*TINY, f"output_root={tmp_path}", "data.monitor_language=de"]), tmp_path / "run")


def test_the_average_hashes_like_runs_made_before_the_option():
    with_key = {"data": {"name": "mtop", "monitor_language": None}}
    assert config_hash(with_key) == config_hash({"data": {"name": "mtop"}})
    assert config_hash({"data": {"name": "mtop", "monitor_language": "en"}}) != config_hash({"data": {"name": "mtop"}})
