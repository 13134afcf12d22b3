"""tools/peer_metric.py scores the public reimplementation's MTOP metric: words with a gold tag other than O,
tagged right, intent ignored."""

import importlib.util
from pathlib import Path

from pnlp_bench.mixer.data.base import Example

SPEC = importlib.util.spec_from_file_location("peer_metric", Path(__file__).parents[1] / "tools" / "peer_metric.py")
peer_metric = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(peer_metric)


def test_counts_only_words_with_a_gold_slot_and_ignores_the_intent():
    examples = [
        Example("a", "en", ["wake", "me", "at", "7"], "IN:CREATE_ALARM", ["O", "O", "B-DATE_TIME", "I-DATE_TIME"]),
        Example("b", "en", ["call", "mom"], "IN:CREATE_CALL", ["O", "B-CONTACT"]),
    ]
    # O words guessed wrong do not count; a B-/I- confusion does; the intent is not looked at
    guesses = [["B-DATE_TIME", "B-DATE_TIME", "B-DATE_TIME", "B-DATE_TIME"], ["O", "B-CONTACT"]]
    assert peer_metric.token_counts(examples, guesses) == (3, 2)


def test_every_gold_slot_word_right_is_full_accuracy_even_with_spurious_slots():
    example = Example("a", "en", ["play", "jazz"], "IN:PLAY_MUSIC", ["O", "B-MUSIC_GENRE"])
    assert peer_metric.token_counts([example], [["B-MUSIC_TYPE", "B-MUSIC_GENRE"]]) == (1, 1)
