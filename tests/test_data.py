"""Loaders on the real files in ../shared/data (skip without them; CI requires them)."""

import gzip
import json

import pytest

from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import DataConfig

from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.mtop import bio_from_spans

pytestmark = pytest.mark.shared


def test_multiatis_english_split_sizes(shared_data):
    loaded = load_data(DataConfig(name="multiatis", root=str(shared_data / "multiatis/multiatis_pp"), languages=["en"]))
    assert [len(loaded.splits[s]) for s in ("train", "eval", "test")] == [4488, 490, 893]
    assert loaded.report["token_tag_count_mismatch_total"] == 0
    assert all(len(e.words) == len(e.tags) for e in loaded.splits["train"])


def test_multiatis_mismatched_rows_are_kept_and_counted(shared_data):
    loaded = load_data(DataConfig(name="multiatis", root=str(shared_data / "multiatis/multiatis_pp"), languages=["fr"]))
    assert len(loaded.splits["test"]) == 893
    assert loaded.report["token_tag_count_mismatch"]["test_FR.tsv.gz"] == 102
    assert sum(e.tags is None for e in loaded.splits["test"]) == 102


def test_mtop_counts_and_bio(shared_data):
    loaded = load_data(DataConfig(name="mtop", root=str(shared_data / "mtop/full"), languages=["en", "de"]))
    assert loaded.report["en/train"] == 15667 and loaded.report["en/eval"] == 2235 and loaded.report["en/test"] == 4386
    assert loaded.report["de/test"] == 3549
    first_test = next(e for e in loaded.splits["test"] if e.lang == "en")
    assert first_test.words == "Show me dates for music festivals in 2018".split()
    assert first_test.tags == ["O", "O", "O", "O", "B-CATEGORY_EVENT", "I-CATEGORY_EVENT", "B-DATE_TIME", "I-DATE_TIME"]
    assert loaded.report["rows_with_overlapping_slots"] > 0  # German has overlapping spans (docs)


def test_mtop_data_root_at_original_layout_gives_the_same_examples(shared_data, tmp_path):
    # A user with the original (uncompressed) release points data.root at it and gets the same result.
    for split in ("train", "eval", "test"):
        (tmp_path / "en").mkdir(exist_ok=True)
        with gzip.open(shared_data / f"mtop/full/en/{split}.txt.gz", "rt", encoding="utf-8") as source:
            (tmp_path / "en" / f"{split}.txt").write_text(source.read(), encoding="utf-8")
    plain = load_data(DataConfig(name="mtop", root=str(tmp_path), languages=["en"]))
    packed = load_data(DataConfig(name="mtop", root=str(shared_data / "mtop/full"), languages=["en"]))
    assert plain.splits["eval"] == packed.splits["eval"]


def test_bio_from_byte_spans_handles_multibyte_text():
    utterance = "Rufe Jürgen an"
    tokens = [{"start": 0, "length": 4}, {"start": 5, "length": len("Jürgen".encode())}, {"start": 13, "length": 2}]
    tags, overlapping, off = bio_from_spans("5:12:SL:CONTACT", tokens)
    assert utterance.encode()[5:12].decode() == "Jürgen"
    assert tags == ["O", "B-CONTACT", "O"] and overlapping == 0 and off == 0
    tags, overlapping, off = bio_from_spans("5:12:SL:CONTACT,5:9:SL:NAME,0:2:SL:X", tokens)
    assert tags == ["O", "B-CONTACT", "O"] and overlapping == 0 and off == 2


def test_missing_data_names_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        load_data(DataConfig(name="mtop", root=str(tmp_path), languages=["en"]))


def test_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / "en").mkdir()
    good = "id1\tIN:X\t\tHello there\tdomain\ten_XX\t[IN:X ]\t" + json.dumps(
        {"tokens": ["Hello", "there"], "tokenSpans": [{"start": 0, "length": 5}, {"start": 6, "length": 5}]}
    )
    for split in ("train", "eval", "test"):
        (tmp_path / "en" / f"{split}.txt").write_text(good + "\n" + ("bad\tline\n" if split == "eval" else ""))
    with pytest.raises(DataError, match=r"eval\.txt:2: expected 8"):
        load_data(DataConfig(name="mtop", root=str(tmp_path), languages=["en"]))


def test_unknown_language_lists_valid_ones():
    with pytest.raises(DataError, match="valid: en, de"):
        load_data(DataConfig(name="mtop", languages=["xx"]))


def test_online_path_fetches_the_original_archive(shared_data, tmp_path, monkeypatch):
    """Up to the network boundary: data.download=true asks `datasets` for the release URL and reads what it
    extracts (here a folder in the release layout standing in for the download)."""
    import datasets

    from pnlp_bench.mixer.data import mtop

    extracted = tmp_path / "extracted" / "mtop" / "en"
    extracted.mkdir(parents=True)
    for split in ("train", "eval", "test"):
        with gzip.open(shared_data / f"mtop/full/en/{split}.txt.gz", "rt", encoding="utf-8") as source:
            (extracted / f"{split}.txt").write_text("".join(source.readlines()[:50]), encoding="utf-8")
    requested = []

    def fake_download_and_extract(self, url):
        requested.append(url)
        return str(tmp_path / "extracted")

    monkeypatch.setattr(datasets.DownloadManager, "download_and_extract", fake_download_and_extract)
    loaded = load_data(DataConfig(name="mtop", root=str(tmp_path / "absent"), languages=["en"], download=True))
    assert requested == [mtop.DOWNLOAD_URL]
    assert len(loaded.splits["train"]) == 50
