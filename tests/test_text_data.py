"""BiGS text data: GLUE on the real files, SCROLLS-format files written here, QMSum, corpora, the tokenizer."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from pnlp_bench.bigs.tokenization import encode_examples, pair_lengths, tokenize, vocabulary
from pnlp_bench.core.files import DataError
from pnlp_bench.bigs.data.corpus import clean_wikitext_line
from pnlp_bench.bigs.data.text_tasks import TextDataConfig, TextExample
from pnlp_bench.bigs.data.loaders import load_text_data
from pnlp_bench.core.paths import BERT_UNCASED_VOCAB
from pnlp_bench.core.registry import ConfigError

# the official GLUE sizes (train, dev), which the stored files reproduce (shared/data/glue/README.md)
GLUE_SIZES = {"sst2": (67_349, 872), "cola": (8_551, 1_043), "mrpc": (3_668, 408), "rte": (2_490, 277), "stsb": (5_749, 1_500)}


@pytest.mark.shared
@pytest.mark.parametrize("task", sorted(GLUE_SIZES))
def test_glue_loaders_count_the_real_files(shared_data, task):
    loaded = load_text_data(TextDataConfig(name=task))
    assert (len(loaded.splits["train"]), len(loaded.splits["eval"])) == GLUE_SIZES[task]
    assert loaded.report["source"] == str(shared_data / "glue" / {"sst2": "SST-2", "cola": "CoLA", "mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B"}[task])
    labels = [example.label for example in loaded.splits["eval"]]
    if task == "stsb":
        assert loaded.kind == "regression" and all(0.0 <= label <= 5.0 for label in labels)
    else:
        assert loaded.kind == "classification" and set(labels) == {0, 1}
    pairs = task in {"mrpc", "rte", "stsb"}
    assert all((example.text_pair is not None) == pairs for example in loaded.splits["train"])


@pytest.mark.shared
def test_glue_rows_are_read_as_glue_writes_them(shared_data):
    rte = load_text_data(TextDataConfig(name="rte"))
    first = rte.splits["train"][0]
    assert first.text == "No Weapons of Mass Destruction Found in Iraq Yet."
    assert first.text_pair == "Weapons of Mass Destruction Found in Iraq."
    assert rte.label_names[first.label] == "not_entailment"  # labels as words in RTE, indices as Hugging Face's
    cola = load_text_data(TextDataConfig(name="cola"))  # no header row in CoLA's files
    assert cola.splits["train"][0].text == "Our friends won't buy this analysis, let alone the next one we propose."
    mrpc = load_text_data(TextDataConfig(name="mrpc", eval_limit=1))  # header after a UTF-8 BOM
    assert mrpc.splits["eval"][0].label == 1 and mrpc.label_names[1] == "equivalent"


def test_glue_task_without_offline_copy_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="qnli: this task has no offline copy here.*data.download=true"):
        load_text_data(TextDataConfig(name="qnli"))


def test_glue_bad_label_names_file_and_line(tmp_path):
    (tmp_path / "train.tsv").write_text("sentence\tlabel\ngood film\t1\nbad film\tseven\n")
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nok\t0\n")
    with pytest.raises(DataError, match=r"train.tsv:3: label 'seven'"):
        load_text_data(TextDataConfig(name="sst2", root=str(tmp_path)))


def test_train_limit_is_a_fixed_random_subset_whatever_the_run_seed(tmp_path):
    import torch

    rows = [f"sentence number {i}" for i in range(200)]
    (tmp_path / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"{row}\t{i % 2}\n" for i, row in enumerate(rows)))
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nok\t0\n")

    def subset(seed_of_the_run: int, **limits) -> list[str]:
        random.seed(seed_of_the_run)  # what the run's seed touches (seed_everything) cannot move the subset
        torch.manual_seed(seed_of_the_run)
        task = load_text_data(TextDataConfig(name="sst2", root=str(tmp_path), **limits))
        return [example.text for example in task.splits["train"]]

    chosen = subset(0, train_limit=20)
    assert chosen == subset(1, train_limit=20) and len(chosen) == 20
    assert chosen != rows[:20]  # not the first rows
    positions = [rows.index(text) for text in chosen]
    assert positions == sorted(positions) and positions[-1] > 100  # file order kept, drawn from the whole split
    assert subset(0, train_limit=20, subset_seed=1) != chosen  # data.subset_seed draws another one
    assert subset(0, train_limit=500) == rows  # a limit above the split's size keeps it whole
    report = load_text_data(TextDataConfig(name="sst2", root=str(tmp_path), train_limit=20)).report
    assert report["train_subset"] == {"limit": 20, "seed": 0, "of": 200}


def test_subset_seed_is_in_the_identity_only_of_runs_with_a_train_limit():
    from helpers import compose_config
    from pnlp_bench.core import store
    from pnlp_bench.bigs.pipeline import bigs_options

    def identity(overrides: list[str], drop_subset_seed: bool = False) -> str:
        resolved = bigs_options(compose_config(["backbone=bigs", *overrides]))
        if drop_subset_seed:  # the config as it was before data.subset_seed existed
            del resolved["data"]["subset_seed"]
        return store.config_hash(resolved)

    # no limit: nothing changed for these runs, and their finished cells keep their identity
    assert identity([]) == identity([], drop_subset_seed=True) == identity(["data.subset_seed=3"])
    # a limit: the rows changed (first rows before, a random subset now), so the identity changes too
    limited = ["data.train_limit=16"]
    assert identity(limited) != identity(limited, drop_subset_seed=True)
    assert identity(limited) != identity([*limited, "data.subset_seed=1"])


# ----------------------------------------------------------------------------------------------------------
# SCROLLS format, on small files written here
# ----------------------------------------------------------------------------------------------------------


def write_jsonl(path, rows, compress=False):
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text)


def quality_input(question, options, article):
    lines = "\n".join(f" ({letter}) {option}" for letter, option in zip("ABCD", options))
    return f"{question}\n\n{lines}\n\n\n{article}"


def test_quality_loader_reads_scrolls_format(tmp_path):
    options = ["A dog", "A cat", "A bird", "A fish"]
    train = [
        {"id": "q1", "pid": "q1_0", "input": quality_input("Who narrates?", options, "THE STORY\nOnce a cat spoke."), "output": "A cat"},
        {"id": "q1", "pid": "q1_1", "input": quality_input("Who narrates?", options, "THE STORY"), "output": "A cat"},  # repeated id
        {"id": "q2", "pid": "q2_0", "input": quality_input("Where?", ["Paris", "Rome", "Oslo", "Lima"], "Far away."), "output": "D"},
    ]
    dev = [{"id": "q3", "pid": "q3_0", "input": quality_input("When?", ["Now", "Then", "Never", "Soon"], "Text."), "output": "(B) Then"}]
    write_jsonl(tmp_path / "train.jsonl", train, compress=True)
    write_jsonl(tmp_path / "validation.jsonl", dev)
    task = load_text_data(TextDataConfig(name="quality", root=str(tmp_path), max_length=4096, truncation="only_second"))
    assert task.kind == "multiple_choice" and task.report["repeated_ids_skipped"] == 1
    first, second = task.splits["train"]
    assert first.text == "Who narrates?" and first.choices == options and first.label == 1
    assert first.text_pair == "THE STORY\nOnce a cat spoke."
    assert second.label == 3 and task.splits["eval"][0].label == 1


def test_contract_nli_loader_and_its_errors(tmp_path):
    rows = [
        {"id": "c1", "pid": "c1", "input": "Some obligations survive termination.\n\nNON-DISCLOSURE AGREEMENT\n1. ...", "output": "Entailment"},
        {"id": "c2", "pid": "c2", "input": "The receiver may share it.\n\nAGREEMENT", "output": "Not mentioned"},
    ]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", rows[:1])
    task = load_text_data(TextDataConfig(name="contract_nli", root=str(tmp_path)))
    assert task.kind == "classification" and task.label_names == ["Entailment", "Contradiction", "Not mentioned"]
    assert [e.label for e in task.splits["train"]] == [0, 2]
    assert task.splits["train"][0].text == "Some obligations survive termination."
    assert task.splits["train"][0].text_pair.startswith("NON-DISCLOSURE")
    write_jsonl(tmp_path / "validation.jsonl", [{"id": "x", "input": "h\n\nc", "output": "Maybe"}])
    with pytest.raises(DataError, match=r"validation.jsonl:1: output 'Maybe' is none of"):
        load_text_data(TextDataConfig(name="contract_nli", root=str(tmp_path)))


def test_scrolls_offline_without_files_says_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="SCROLLS quality: no train.jsonl.*data.download=true"):
        load_text_data(TextDataConfig(name="quality"))


@pytest.mark.shared
def test_qmsum_answer_choice_and_query_type_on_the_real_release(shared_data):
    choice = load_text_data(TextDataConfig(name="qmsum", max_length=4096, truncation="only_second"))
    assert (len(choice.splits["train"]), len(choice.splits["eval"])) == (1_257, 272)  # SCROLLS's QMSum sizes
    assert choice.kind == "multiple_choice"
    for example in choice.splits["eval"][:50]:
        assert len(example.choices) == 4 and len(set(example.choices)) == 4
        assert example.text_pair.count("\n") > 10  # the transcript, "speaker: content" per line
    positions = [example.label for example in choice.splits["train"]]
    assert set(positions) == {0, 1, 2, 3} and max(positions.count(i) for i in range(4)) < 0.35 * len(positions)
    again = load_text_data(TextDataConfig(name="qmsum", eval_limit=5))
    assert [e.choices for e in again.splits["eval"]] == [e.choices for e in choice.splits["eval"][:5]]  # seeded
    kinds = load_text_data(TextDataConfig(name="qmsum", options={"task": "query_type"}))
    assert kinds.kind == "classification" and set(e.label for e in kinds.splits["train"]) == {0, 1}


def test_qmsum_bad_option_is_a_config_error():
    with pytest.raises(ConfigError, match="data.options.task must be answer_choice or query_type"):
        load_text_data(TextDataConfig(name="qmsum", options={"task": "summarise"}))


# ----------------------------------------------------------------------------------------------------------
# Corpora
# ----------------------------------------------------------------------------------------------------------


def test_wikitext_lines_lose_their_tokenisation_artefacts():
    assert clean_wikitext_line(" = = Gameplay = = ") == "Gameplay"
    assert clean_wikitext_line(" It sold 1 @,@ 000 @-@ odd copies of <unk> . ") == "It sold 1,000-odd copies of [UNK] ."
    assert clean_wikitext_line(" ") == ""
    assert tokenize(["copies of [UNK] ."]) == [tokenize(["copies of"])[0] + [vocabulary().unk] + tokenize(["."])[0]]


@pytest.mark.shared
def test_wikitext2_counts_documents(shared_data):
    task = load_text_data(TextDataConfig(name="wikitext2"))
    # non-blank lines of the official files (36,718 / 3,760 lines, about a third blank)
    assert (len(task.splits["train"]), len(task.splits["eval"])) == (23_767, 2_461)
    assert task.splits["train"][0].text == "Valkyria Chronicles III"


def test_text_corpus_from_files_with_a_dev_fraction(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"document number {i}\n\n" for i in range(100)))
    task = load_text_data(TextDataConfig(name="text_corpus", options={"files": [str(tmp_path / "*.txt")], "dev_fraction": 0.1}))
    assert (len(task.splits["train"]), len(task.splits["eval"])) == (90, 10) and task.kind == "mlm"
    with pytest.raises(DataError, match="no file matches"):
        load_text_data(TextDataConfig(name="text_corpus", options={"files": [str(tmp_path / "none*.txt")]}))


# ----------------------------------------------------------------------------------------------------------
# Tokenizer and encoding
# ----------------------------------------------------------------------------------------------------------


def test_wordpiece_matches_transformers_bert_uncased():
    transformers = pytest.importorskip("transformers")
    reference = transformers.BertTokenizer(str(BERT_UNCASED_VOCAB), do_lower_case=True)
    texts = [
        "Hello, World! It's a charming and often affecting journey.",
        "Café naïve résumé — déjà vu; 3.14159 @-@ (parentheses) [brackets]",
        "東京 is in Japan; ünïcödé and emoji 🙂 too",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
    ]
    ours = tokenize(texts)
    for text, ids in zip(texts, ours):
        assert ids == reference(text, add_special_tokens=False)["input_ids"], text


def simulate_longest_first(first: int, second: int, budget: int) -> tuple[int, int]:
    while first + second > budget:  # Hugging Face's loop: one token from the longer side, the second on ties
        if first > second:
            first -= 1
        else:
            second -= 1
    return first, second


def test_pair_truncation_matches_the_one_token_at_a_time_rule():
    rng = random.Random(0)
    for _ in range(500):
        first, second, budget = rng.randint(0, 80), rng.randint(0, 80), rng.randint(1, 100)
        assert pair_lengths(first, second, budget, "longest_first") == simulate_longest_first(first, second, budget)
    assert pair_lengths(10, 5000, 125, "only_second") == (10, 115)
    assert pair_lengths(200, 5000, 125, "only_second") == (62, 63)


def test_encoding_pairs_and_multiple_choice():
    vocab = vocabulary()
    single = encode_examples([TextExample("1", "a good film")], max_length=8)
    assert single.input_ids.shape == (1, 8) and single.input_ids[0, 0] == vocab.cls
    assert single.input_ids[0].tolist()[:5] == [vocab.cls, *tokenize(["a good film"])[0], vocab.sep]
    assert single.input_ids[0, 5:].tolist() == [vocab.pad] * 3
    pair = encode_examples([TextExample("2", "one two three", text_pair="four five six seven eight")], max_length=8)
    ids, types = pair.input_ids[0].tolist(), pair.token_type_ids[0].tolist()
    assert ids.count(vocab.sep) == 2 and types == [0, 0, 0, 0, 0, 1, 1, 1] and pair.truncated == 1  # 3 + 2 tokens kept
    choice = encode_examples(
        [TextExample("3", "who?", text_pair="the long story " * 50, label=1, choices=["a dog", "a cat"])], max_length=32, truncation="only_second"
    )
    assert choice.input_ids.shape == (1, 2, 32)
    first_segment = choice.input_ids[0, 1, : choice.input_ids[0, 1].tolist().index(vocab.sep)].tolist()
    assert first_segment == [vocab.cls, *tokenize(["who?"])[0], *tokenize(["a cat"])[0]]


def test_text_corpus_goes_online_only_when_allowed():
    with pytest.raises(DataError, match="text_corpus: no options.files; pass data.download=true"):
        load_text_data(TextDataConfig(name="text_corpus", options={"hf_dataset": "Salesforce/wikitext"}))
