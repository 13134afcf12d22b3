"""Malformed inputs in every format the pNLP loaders read give one line naming the file and line (or a
documented, counted skip), never a traceback from deep inside."""

import gzip
import json
from pathlib import Path

import pytest
import torch

from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import DataConfig, Example

from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.features import featurize
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection

TOKENS = json.dumps({"tokens": ["Wake", "me", "up"], "tokenSpans": [{"start": 0, "length": 4}, {"start": 5, "length": 2}, {"start": 8, "length": 2}]})
MTOP_LINE = f"id1\tIN:CREATE_ALARM\t\tWake me up\talarm\ten_XX\t[IN:CREATE_ALARM ]\t{TOKENS}"
ATIS_HEADER = "id\tutterance\tslot_labels\tintent"


def write(path: Path, text: str | bytes, packed: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if packed else data)
    return path


def mtop_root(tmp_path: Path, eval_text: str | bytes, packed: bool = False) -> Path:
    for split in ("train", "test"):
        write(tmp_path / "en" / f"{split}.txt", MTOP_LINE + "\n")
    name = "eval.txt.gz" if packed else "eval.txt"
    write(tmp_path / "en" / name, eval_text, packed)
    return tmp_path


def load_mtop(root: Path):
    return load_data(DataConfig(name="mtop", root=str(root), languages=["en"]))


@pytest.mark.parametrize(
    ("eval_text", "message"),
    [
        (MTOP_LINE + "\nonly\ttwo\n", r"eval\.txt:2: expected 8 tab-separated columns, found 2"),
        (MTOP_LINE.replace("IN:CREATE_ALARM", "CREATE_ALARM", 1) + "\n", r"eval\.txt:1: intent 'CREATE_ALARM'"),
        (MTOP_LINE.replace("Wake me up\t", " \t") .replace(TOKENS, '{"tokens": [], "tokenSpans": []}') + "\n", r"eval\.txt:1: empty utterance"),
        (MTOP_LINE.replace(TOKENS, "{not json") + "\n", r"eval\.txt:1: malformed tokens"),
        ("", r"eval\.txt: no examples"),
        (MTOP_LINE.encode() + b"\n" + MTOP_LINE.encode().replace(b"Wake", b"W\xffke") + b"\n", r"eval\.txt:2: invalid UTF-8"),
    ],
)
def test_mtop_malformed(tmp_path, eval_text, message):
    with pytest.raises(DataError, match=message):
        load_mtop(mtop_root(tmp_path, eval_text))


def test_mtop_truncated_gzip(tmp_path):
    root = mtop_root(tmp_path, (MTOP_LINE + "\n") * 200, packed=True)
    path = root / "en" / "eval.txt.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"eval\.txt\.gz:\d+: truncated or corrupt gzip"):
        load_mtop(root)


def multiatis_root(tmp_path: Path, test_text: str) -> Path:
    row = "1\tshow flights\tO O\tatis_flight"
    for split in ("train", "dev"):
        write(tmp_path / f"{split}_EN.tsv", f"{ATIS_HEADER}\n{row}\n2\tshow fares\tO O\tatis_airfare\n")
    write(tmp_path / "test_EN.tsv", test_text)
    return tmp_path


def load_multiatis(root: Path):
    return load_data(DataConfig(name="multiatis", root=str(root), languages=["en"]))


@pytest.mark.parametrize(
    ("test_text", "message"),
    [
        (f"{ATIS_HEADER}\n1\tshow flights\tO O\n", r"test_EN\.tsv:2: expected 4 tab-separated columns, found 3"),
        (f"{ATIS_HEADER}\n1\t \t\tatis_flight\n", r"test_EN\.tsv:2: empty utterance"),
        (f"{ATIS_HEADER}\n1\tshow flights\tO O\t\n", r"test_EN\.tsv:2: empty intent"),
        ("", r"test_EN\.tsv: empty file"),
        ("id\tutterance\n", r"test_EN\.tsv:1: expected header"),
    ],
)
def test_multiatis_malformed(tmp_path, test_text, message):
    with pytest.raises(DataError, match=message):
        load_multiatis(multiatis_root(tmp_path, test_text))


def test_multiatis_count_mismatch_and_unknown_label_are_counted_skips(tmp_path):
    root = multiatis_root(tmp_path, f"{ATIS_HEADER}\n1\tshow me flights\tO O\tatis_flight\n2\tbook it\tO O\tatis_never_seen\n")
    loaded = load_multiatis(root)
    assert loaded.report["token_tag_count_mismatch"]["test_EN.tsv"] == 1
    assert loaded.splits["test"][0].tags is None
    data = featurize(loaded.splits, MinHashProjection(MinHashConfig(feature_size=64, num_hashes=4)), max_length=1)
    assert data.splits["test"].unseen_labels == 1
    assert data.splits["test"].truncated == 2  # more words than S = 1: cut and counted


def atis_root(tmp_path: Path, seq_out: str) -> Path:
    for split in ("train", "dev", "test"):
        write(tmp_path / split / "seq.in", "show flights\nshow fares\n")
        write(tmp_path / split / "seq.out", seq_out if split == "test" else "O O\nO O\n")
        write(tmp_path / split / "label", "atis_flight\natis_airfare\n")
    return tmp_path


def test_atis_tag_count_mismatch_names_file_and_line(tmp_path):
    with pytest.raises(DataError, match=r"test/seq\.out:2: 1 tags for 2 words"):
        load_data(DataConfig(name="atis", root=str(atis_root(tmp_path, "O O\nO\n"))))


def test_atis_line_count_mismatch(tmp_path):
    with pytest.raises(DataError, match=r"test: seq\.in, seq\.out and label have 2, 1 and 2 lines"):
        load_data(DataConfig(name="atis", root=str(atis_root(tmp_path, "O O\n"))))


def test_aligned_mtop_json_errors(tmp_path, shared_data):
    good = [{"id": "1", "question": {"en": "wake me up"}, "mr": {"slot_intent": {"en": "[IN:CREATE_ALARM ]"}}}]
    write(tmp_path / "aligned" / "xsemplr_mtop_dev.json", json.dumps(good))
    options = {"aligned_root": str(tmp_path / "aligned")}
    config = DataConfig(name="mtop_aligned", root=str(shared_data / "mtop/full"), languages=["en"], options=options)
    write(tmp_path / "aligned" / "xsemplr_mtop_test.json", '[{"id": "1",\n "question": ')
    with pytest.raises(DataError, match=r"xsemplr_mtop_test\.json:2: invalid JSON"):
        load_data(config)
    broken = [{"id": "1", "question": {"en": "wake me up"}, "mr": {"slot_intent": {"en": "[IN:X [SL:Y me ]"}}}]
    write(tmp_path / "aligned" / "xsemplr_mtop_test.json", json.dumps(broken))
    with pytest.raises(DataError, match=r"record 0 \(en\): malformed example \(unbalanced brackets\)"):
        load_data(config)


def test_aligned_mtop_real_subset(shared_data):
    loaded = load_data(DataConfig(name="mtop_aligned", root=str(shared_data / "mtop/full"), languages=["en"]))
    assert len(loaded.splits["eval"]) == 859 and len(loaded.splits["test"]) == 1237
    assert len(loaded.splits["train"]) == 15667
    first = loaded.splits["test"][0]
    assert first.tags == ["O", "O", "O", "O", "B-CATEGORY_EVENT", "I-CATEGORY_EVENT", "B-DATE_TIME", "I-DATE_TIME"]


def test_atis_real_split_sizes(shared_data):
    loaded = load_data(DataConfig(name="atis", root=str(shared_data / "multiatis/atis_en_jointbert")))
    assert [len(loaded.splits[s]) for s in ("train", "eval", "test")] == [4478, 500, 893]


# ----------------------------------------------------------------------------------------------------------
# GLUE TSV and the MLM text corpus (BiGS)
# ----------------------------------------------------------------------------------------------------------

GLUE_TRAIN = "sentence\tlabel\ngood film\t1\nbad film\t0\n"


def load_sst2(root: Path, dev: str | bytes, name: str = "dev.tsv"):
    from pnlp_bench.bigs.data.text_tasks import TextDataConfig
    from pnlp_bench.bigs.data.loaders import load_text_data

    write(root / "train.tsv", GLUE_TRAIN)
    write(root / name, dev)
    return load_text_data(TextDataConfig(name="sst2", root=str(root)))


@pytest.mark.parametrize(
    ("dev", "message"),
    [
        ("sentence\tlabel\nok\t0\nno label here\n", r"dev\.tsv:3: expected 2 tab-separated columns, found 1"),
        ("sentence\tlabel\nok\t0\n \t1\n", r"dev\.tsv:3: empty sentence"),
        ("sentence\tlabel\nok\t0\nmeh\tmaybe\n", r"dev\.tsv:3: label 'maybe'"),
        (b"sentence\tlabel\nok\t0\nb\xe9d film\t0\n", r"dev\.tsv:3: invalid UTF-8"),
        ("", r"dev\.tsv: empty file"),
        ("sentence\tlabel\n", r"dev\.tsv: no examples"),
    ],
)
def test_glue_tsv_malformed(tmp_path, dev, message):
    with pytest.raises(DataError, match=message):
        load_sst2(tmp_path, dev)


def test_glue_truncated_gzip_names_file_and_line(tmp_path):
    truncated = gzip.compress(("sentence\tlabel\n" + "a fine film\t1\n" * 500).encode())[:-30]
    with pytest.raises(DataError, match=r"dev\.tsv\.gz:\d+: truncated or corrupt gzip"):
        load_sst2(tmp_path, truncated, name="dev.tsv.gz")


def test_glue_more_tokens_than_the_length_are_cut_and_counted():
    from pnlp_bench.bigs.tokenization import encode_examples
    from pnlp_bench.bigs.data.text_tasks import TextExample
    from pnlp_bench.core.paths import BERT_UNCASED_VOCAB

    examples = [TextExample(uid="a", text="word " * 50), TextExample(uid="b", text="short")]
    encoded = encode_examples(examples, 16, "longest_first", str(BERT_UNCASED_VOCAB))
    assert encoded.truncated == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"corpus\.txt: no text"),
        (b"\n \n\n", r"corpus\.txt: no text"),
        (b"first line\nsecond \xff line\n", r"corpus\.txt:2: invalid UTF-8"),
    ],
)
def test_text_corpus_malformed(tmp_path, content, message):
    from pnlp_bench.bigs.data.text_tasks import TextDataConfig
    from pnlp_bench.bigs.data.loaders import load_text_data

    write(tmp_path / "corpus.txt", content)
    with pytest.raises(DataError, match=message):
        load_text_data(TextDataConfig(name="text_corpus", options={"files": [str(tmp_path / "corpus.txt")]}))


def test_text_corpus_truncated_gzip(tmp_path):
    from pnlp_bench.bigs.data.text_tasks import TextDataConfig
    from pnlp_bench.bigs.data.loaders import load_text_data

    path = write(tmp_path / "corpus.txt.gz", "a line of text\n" * 2000, packed=True)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError, match=r"corpus\.txt\.gz:\d+: truncated or corrupt gzip"):
        load_text_data(TextDataConfig(name="text_corpus", options={"files": [str(path)]}))
