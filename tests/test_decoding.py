"""BIO-consistent decoding (data.head_options.decode=viterbi) and the label round trip on the real MTOP files."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from pnlp_bench.core.files import iter_lines
from pnlp_bench.mixer.data.mtop import LANGUAGES, bio_from_spans, split_path
from pnlp_bench.mixer.metrics import bio_consistent, intent_slot_scores, spans
from pnlp_bench.mixer.models.heads import (
    FORBIDDEN,
    IntentSlotHead,
    bio_structure,
    bio_transitions,
    bio_viterbi_decode,
    viterbi_decode,
)
from pnlp_bench.core.registry import ConfigError
from tests.helpers import compose_config

TAGS = ["B-A", "B-B", "I-A", "I-B", "O"]


consistent = bio_consistent


def test_transitions_allow_an_inside_tag_only_after_its_own_type():
    start, transitions = bio_transitions(TAGS)
    allowed = {(TAGS[p], TAGS[c]) for p in range(5) for c in range(5) if transitions[p, c] == 0}
    assert ("B-A", "I-A") in allowed and ("I-A", "I-A") in allowed
    assert ("B-B", "I-A") not in allowed and ("O", "I-A") not in allowed and ("I-B", "I-A") not in allowed
    assert ("I-B", "B-A") in allowed and ("O", "O") in allowed
    assert [TAGS[i] for i in range(5) if start[i] == FORBIDDEN] == ["I-A", "I-B"]


def test_viterbi_is_the_best_consistent_sequence_by_exhaustive_search():
    generator = torch.Generator().manual_seed(0)
    start, transitions = bio_transitions(TAGS)
    scores = torch.log_softmax(torch.randn(64, 4, 5, generator=generator) * 3, dim=-1)
    decoded = viterbi_decode(scores, torch.ones(64, 4, dtype=torch.bool), start, transitions)
    for row in range(64):
        best = max(
            (seq for seq in itertools.product(range(5), repeat=4) if consistent([TAGS[i] for i in seq])),
            key=lambda seq: sum(scores[row, t, i].item() for t, i in enumerate(seq)),
        )
        assert decoded[row].tolist() == list(best)


def test_viterbi_changes_argmax_only_where_argmax_breaks_bio():
    generator = torch.Generator().manual_seed(1)
    start, transitions = bio_transitions(TAGS)
    scores = torch.log_softmax(torch.randn(256, 6, 5, generator=generator) * 3, dim=-1)
    decoded = viterbi_decode(scores, torch.ones(256, 6, dtype=torch.bool), start, transitions)
    greedy = scores.argmax(-1)
    broken = 0
    for row in range(256):
        assert consistent([TAGS[i] for i in decoded[row]])
        if consistent([TAGS[i] for i in greedy[row]]):
            assert decoded[row].tolist() == greedy[row].tolist()
        else:
            broken += 1
    assert broken > 20  # the random scores do produce inconsistent argmax rows, so the check above has teeth


def test_padding_positions_do_not_change_the_word_tags():
    generator = torch.Generator().manual_seed(2)
    start, transitions = bio_transitions(TAGS)
    scores = torch.log_softmax(torch.randn(32, 8, 5, generator=generator), dim=-1)
    mask = torch.arange(8)[None] < torch.randint(1, 9, (32, 1), generator=generator)
    first = viterbi_decode(scores, mask, start, transitions)
    # Padding that strongly prefers an inside tag would pull the last word's tag towards B- of its type.
    noisy = torch.where(mask[..., None], scores, torch.tensor([-9.0, -9.0, 0.0, 0.0, -9.0]))
    second = viterbi_decode(noisy, mask, start, transitions)
    assert torch.equal(first, second)
    assert (first[~mask] == 0).all()
    for row in range(32):
        length = int(mask[row].sum())
        alone = viterbi_decode(scores[row : row + 1, :length], mask[row : row + 1, :length], start, transitions)
        assert first[row, :length].tolist() == alone[0].tolist()


@pytest.mark.parametrize("tags", [TAGS, ["O", "I-C", "B-A", "I-A", "B-B", "I-B"]])  # I-C: an inside tag with no B-C
def test_the_linear_time_bio_search_equals_the_dense_one(tags):
    generator = torch.Generator().manual_seed(3)
    start, transitions = bio_transitions(tags)
    inside, begin = bio_structure(tags)
    assert [tags[i] for i in begin] == [f"B-{tags[i][2:]}" if f"B-{tags[i][2:]}" in tags else tags[i] for i in inside]
    for scale in (0.5, 3.0):
        scores = torch.log_softmax(torch.randn(300, 12, len(tags), generator=generator) * scale, dim=-1)
        mask = torch.arange(12)[None] < torch.randint(0, 13, (300, 1), generator=generator)  # empty rows too
        dense = viterbi_decode(scores, mask, start, transitions)
        fast = bio_viterbi_decode(scores, mask, start, inside, begin)
        assert torch.equal(fast, dense)
        assert all(consistent([tags[i] for i in row[:n]]) for row, n in zip(fast.tolist(), mask.sum(1).tolist()))


def test_head_decodes_with_viterbi_and_keeps_argmax_as_the_default():
    torch.manual_seed(0)
    plain = IntentSlotHead(8, 5, 3)
    viterbi = IntentSlotHead(8, 5, 3, decode="viterbi", tag_names=TAGS)
    viterbi.load_state_dict(plain.state_dict())  # the decoder adds no weights: checkpoints load either way
    x, mask = torch.randn(16, 6, 8) * 4, torch.ones(16, 6, dtype=torch.bool)
    out = plain(x, mask)
    assert torch.equal(plain.predict(out, mask)["tags"], out["tag_logits"].argmax(-1))
    tags = viterbi.predict(out, mask)["tags"]
    assert all(consistent([TAGS[i] for i in row]) for row in tags)
    assert torch.equal(viterbi.predict(out, mask)["label"], plain.predict(out, mask)["label"])


def test_decode_option_is_checked_and_reaches_the_model():
    from pnlp_bench.mixer.data.base import DataConfig
    from pnlp_bench.mixer.data.features import Featurized, LabelSpace
    from pnlp_bench.mixer.pipeline import build_model

    labels = LabelSpace(labels=["IN:X", "IN:Y"], tags=TAGS)
    data = Featurized(word_table=None, splits={}, labels=labels)
    cfg = compose_config(["data=mtop_sample"])
    assert cfg.data.head_options.decode == "viterbi"  # the intent+slot data sets decode with Viterbi by default
    model = build_model(cfg, DataConfig(name="mtop", max_length=64, head_options={"decode": "viterbi"}), data)
    assert model.head.decode == "viterbi"
    with pytest.raises(ConfigError, match="decode must be one of argmax, viterbi, got 'beam'"):
        build_model(cfg, DataConfig(name="mtop", max_length=64, head_options={"decode": "beam"}), data)


def byte_spans(tags: list[str], token_spans: list[dict]) -> set[tuple[int, int, str]]:
    return {
        (token_spans[first]["start"], token_spans[last - 1]["start"] + token_spans[last - 1]["length"], kind)
        for first, last, kind in spans(tags)
    }


@pytest.mark.shared
def test_gold_tags_round_trip_to_mtop_frames_on_every_row(shared_data):
    """Gold BIO tags, decoded back to spans, give MTOP's top-level slot spans on every row the BIO can encode;
    the rows it cannot (overlapping spans, boundaries inside a token) are exactly the ones the loader counts;
    and gold tags score 100 exact match."""
    from pnlp_bench.mixer.data.base import Example

    root = shared_data / "mtop/full"
    mismatched = {}
    for lang in LANGUAGES:
        for split in ("train", "eval", "test"):
            path = split_path(root, lang, split)
            examples, lossy = [], 0
            for _, line in iter_lines(path):
                _, intent, slot_column, _, _, _, _, tokens_json = line.rstrip("\n").split("\t")
                tokens = json.loads(tokens_json)
                tags, overlapping, off_boundary = bio_from_spans(slot_column, tokens["tokenSpans"])
                frame_slots = []
                for item in filter(None, slot_column.split(",")):
                    start, end, label = item.split(":", 2)
                    frame_slots.append((int(start), int(end), label.removeprefix("SL:")))
                frame = set(frame_slots)
                lossy += bool(overlapping or off_boundary)
                if not (overlapping or off_boundary):
                    assert byte_spans(tags, tokens["tokenSpans"]) == frame, (path, line[:80])
                else:
                    # a slot left out (one overlapping an earlier one, or the same span twice), never a wrong one
                    kept = byte_spans(tags, tokens["tokenSpans"])
                    assert kept <= frame and len(kept) < len(frame_slots)
                examples.append(Example(uid="", lang=lang, words=tokens["tokens"], label=intent, tags=tags))
            mismatched[f"{lang}/{split}"] = lossy
            gold = intent_slot_scores(examples, [e.label for e in examples], [e.tags for e in examples])
            assert gold["exact_match"] == 100.0 and gold["slot_f1"] == 100.0
    # The data's README counts the rows whose BIO is lossless; English has one lossy row (train).
    stats = json.loads((root / "stats.json").read_text())
    for key, lossy in mismatched.items():
        assert lossy == stats[key]["examples"] - stats[key]["bio_lossless"], key
    assert mismatched["en/eval"] == mismatched["en/test"] == 0


def test_argmax_decoding_hashes_as_the_cells_run_before_the_option():
    from pnlp_bench.core import store

    before = {"data": {"name": "mtop", "head_options": {}}, "seed": 0}
    explicit = {"data": {"name": "mtop", "head_options": {"decode": "argmax"}}, "seed": 0}
    viterbi = {"data": {"name": "mtop", "head_options": {"decode": "viterbi"}}, "seed": 0}
    assert store.config_hash(before) == store.config_hash(explicit) != store.config_hash(viterbi)
    # a top-level group left empty by its neutral keys still hashes as if it had never existed
    assert store.config_hash({**before, "quantize": {"int8": False, "mode": "simulated"}}) == store.config_hash(before)
