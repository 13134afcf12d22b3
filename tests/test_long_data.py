"""IMDB and Hyperpartisan (Table 7): counts on the real files, the validation carve-out and the folds,
malformed inputs reported in one line naming the file and line, and the online paths up to the network."""

import gzip
import json
import time
from collections import Counter

import pytest

from pnlp_bench.mixer.data import hyperpartisan, imdb
from pnlp_bench.core.files import DataError
from pnlp_bench.mixer.data.base import DataConfig, Example
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.data.features import featurize
from pnlp_bench.core.splits import carve_stratified, stratified_folds
from pnlp_bench.mixer.data.text import words_of
from pnlp_bench.mixer.projection.minhash import MinHashConfig, MinHashProjection
from pnlp_bench.core.registry import ConfigError

from test_features import assert_same_as_reference


@pytest.fixture(scope="module")
def imdb_data(shared_data):
    return load_data(DataConfig(name="imdb", root=str(shared_data / "imdb"), max_length=1024))


@pytest.fixture(scope="module")
def hyperpartisan_root(shared_data):
    return shared_data / "hyperpartisan"


# --- the pre-tokenizer ---------------------------------------------------------------------------


def test_words_split_on_whitespace_and_punctuation_without_br_tags():
    text = "Great film!<br /><br />It's 10/10, really...<BR>Go see it"
    assert words_of(text) == ["Great", "film", "!", "It", "'", "s", "10", "/", "10", ",", "really", ".", ".", ".",
                              "Go", "see", "it"]
    assert words_of("Recuérdame — 東京") == ["Recuérdame", "—", "東京"]
    assert words_of(" \n\t ") == []


# --- IMDB on the real files ----------------------------------------------------------------------

@pytest.mark.shared
def test_imdb_counts_and_the_carved_validation_split(imdb_data):
    report, splits = imdb_data.report, imdb_data.splits
    assert report["train_source"] == 25000 and len(splits["test"]) == 25000
    assert len(splits["train"]) == 22500 and len(splits["eval"]) == 2500
    assert report["labels"]["test"] == {"neg": 12500, "pos": 12500}
    assert report["labels"]["eval"] == {"neg": 1250, "pos": 1250}
    assert report["labels"]["train"] == {"neg": 11250, "pos": 11250}
    train_ids, eval_ids = {e.uid for e in splits["train"]}, {e.uid for e in splits["eval"]}
    assert not train_ids & eval_ids and len(train_ids | eval_ids) == 25000
    assert all(e.uid.startswith("train-") for e in splits["eval"])  # carved from train, never from test
    first_pos = next(e for e in splits["train"] + splits["eval"] if e.uid == "train-pos-0")
    assert first_pos.words[:7] == ["Bromwell", "High", "is", "a", "cartoon", "comedy", "."]
    # "... but so what?<br /><br />Equally annoying ...": the tags are gone, not split into words.
    second_neg = next(e for e in splits["train"] + splits["eval"] if e.uid == "train-neg-1")
    start = second_neg.words.index("Equally")
    assert second_neg.words[start - 2 : start + 2] == ["what", "?", "Equally", "annoying"]
    assert sum("br" in e.words for e in splits["test"]) < 100


@pytest.mark.shared
def test_imdb_vectorised_featurize_equals_the_loop_on_real_reviews(imdb_data):
    sample = {split: examples[:150] for split, examples in imdb_data.splits.items()}
    projection = MinHashProjection(MinHashConfig(feature_size=1024, num_hashes=64, window=0))
    assert_same_as_reference(sample, projection, 1024)
    assert_same_as_reference(sample, projection, 100)


@pytest.mark.slow
@pytest.mark.shared
def test_imdb_train_featurizes_in_under_30_seconds(shared_data):
    """The issue's target: all 25,000 training reviews, tokenization included, on 2 CPU cores."""
    projection = MinHashProjection(MinHashConfig(feature_size=1024, num_hashes=64, window=0))
    projection.table  # noqa: B018  (the vocabulary table is cached across runs)
    path = shared_data / "imdb" / "train.jsonl.gz"
    started = time.perf_counter()
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    train = [Example(str(i), "en", words_of(row["text"]), str(row["label"])) for i, row in enumerate(rows)]
    data = featurize({"train": train}, projection, 1024)
    assert time.perf_counter() - started < 30
    assert data.splits["train"].word_ids.shape == (25000, 1024)


def test_carve_out_is_deterministic_stratified_and_independent_of_file_order():
    examples = [Example(f"u{i}", "en", ["w"], "pos" if i % 4 == 0 else "neg") for i in range(1000)]
    rest, carved = carve_stratified(examples, 100, seed=0)
    assert Counter(e.label for e in carved) == {"neg": 75, "pos": 25}
    assert len(rest) == 900 and not {e.uid for e in rest} & {e.uid for e in carved}
    _, again = carve_stratified(list(reversed(examples)), 100, seed=0)
    assert {e.uid for e in again} == {e.uid for e in carved}
    _, other_seed = carve_stratified(examples, 100, seed=1)
    assert {e.uid for e in other_seed} != {e.uid for e in carved}
    assert [e.uid for e in carved] == sorted((e.uid for e in carved), key=lambda u: int(u[1:]))  # source order kept


def imdb_jsonl(folder, train_lines, test_lines=None):
    folder.mkdir(parents=True, exist_ok=True)
    good = [json.dumps({"text": f"review {i} is good", "label": i % 2, "rating": 8, "id": i}) for i in range(20)]
    for split, lines in (("train", train_lines), ("test", test_lines or good)):
        with gzip.open(folder / f"{split}.jsonl.gz", "wb") as handle:
            handle.write(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return good


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", r"train\.jsonl\.gz:3: not a JSON object"),
        (json.dumps({"text": "x", "label": 2, "id": 99}), r"train\.jsonl\.gz:3: unknown label 2"),
        (json.dumps({"text": "<br /> ", "label": 0, "id": 99}), r"train\.jsonl\.gz:3: empty document"),
        (json.dumps({"text": "x", "id": 99}), r"train\.jsonl\.gz:3: expected fields"),
        (b'{"text": "caf\xe9", "label": 0, "id": 99}', r"train\.jsonl\.gz:3: invalid UTF-8"),
        (json.dumps({"text": "again", "label": 0, "id": 0}), r"train\.jsonl\.gz:3: duplicate review neg/0"),
    ],
)
def test_imdb_malformed_lines_name_file_and_line(tmp_path, bad_line, message):
    good = [json.dumps({"text": f"review {i} is good", "label": i % 2, "rating": 8, "id": i}) for i in range(2)]
    imdb_jsonl(tmp_path, [*good, bad_line])
    with pytest.raises(DataError, match=message):
        load_data(DataConfig(name="imdb", root=str(tmp_path), options={"eval_size": 1}))


def test_imdb_truncated_gzip_names_the_file(tmp_path):
    imdb_jsonl(tmp_path, [json.dumps({"text": f"review {i}", "label": i % 2, "id": i}) for i in range(300)])
    path = tmp_path / "train.jsonl.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"train\.jsonl\.gz:\d+: truncated or corrupt gzip"):
        load_data(DataConfig(name="imdb", root=str(tmp_path), options={"eval_size": 10}))


def test_imdb_bad_options_are_named(tmp_path):
    imdb_jsonl(tmp_path, [json.dumps({"text": "a b", "label": 0, "id": 1})])
    with pytest.raises(ConfigError, match="data.options: unknown key 'evalsize'"):
        load_data(DataConfig(name="imdb", root=str(tmp_path), options={"evalsize": 3}))


def release_layout(folder, count=6):
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            (folder / split / label).mkdir(parents=True)
            for i in range(count):
                (folder / split / label / f"{i}_{3 if label == 'neg' else 8}.txt").write_text(f"{label} review {i}<br />end")


def test_imdb_reads_the_release_layout_and_names_bad_files(tmp_path):
    release_layout(tmp_path / "aclImdb")
    loaded = load_data(DataConfig(name="imdb", root=str(tmp_path), options={"eval_size": 4}))
    assert [len(loaded.splits[s]) for s in ("train", "eval", "test")] == [8, 4, 12]
    assert loaded.report["layout"] == "release"
    assert loaded.splits["test"][0].words == ["neg", "review", "0", "end"]
    (tmp_path / "aclImdb" / "test" / "pos" / "7_9.txt").write_bytes(b"bad \xff byte")
    with pytest.raises(DataError, match=r"7_9\.txt:1: invalid UTF-8"):
        load_data(DataConfig(name="imdb", root=str(tmp_path), options={"eval_size": 4}))


def test_imdb_online_path_fetches_the_stanford_archive(tmp_path, monkeypatch):
    """Up to the network boundary: data.download=true asks `datasets` for the original archive and reads
    what it extracts (here a small folder in the release layout standing in for the download)."""
    import datasets

    release_layout(tmp_path / "extracted" / "aclImdb")
    requested = []

    def fake_download_and_extract(self, url):
        requested.append(url)
        return str(tmp_path / "extracted")

    monkeypatch.setattr(datasets.DownloadManager, "download_and_extract", fake_download_and_extract)
    loaded = load_data(DataConfig(name="imdb", root=str(tmp_path / "absent"), download=True, options={"eval_size": 2}))
    assert requested == [imdb.DOWNLOAD_URL] == ["https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"]
    assert len(loaded.splits["train"]) == 10 and len(loaded.splits["test"]) == 12


def test_imdb_missing_names_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=f"IMDB not found.*{tmp_path}"):
        load_data(DataConfig(name="imdb", root=str(tmp_path)))


# --- Hyperpartisan on the real files -------------------------------------------------------------


@pytest.mark.shared
def test_hyperpartisan_counts_label_balance_and_text(hyperpartisan_root):
    loaded = load_data(DataConfig(name="hyperpartisan", root=str(hyperpartisan_root)))
    assert loaded.report["articles"] == 645
    assert loaded.report["labels_total"] == {"false": 407, "true": 238}
    assert sum(loaded.report[s] for s in ("train", "eval", "test")) == 645
    everything = {e.uid: e for split in loaded.splits.values() for e in split}
    first = everything["0000000"]
    assert first.label == "true" and first.words[:4] == ["From", "flickr", ".", "com"]
    assert "Money" in first.words and "href" not in first.words  # text of the markup, not the markup


@pytest.mark.shared
def test_hyperpartisan_folds_are_stratified_disjoint_and_cover_everything(hyperpartisan_root):
    tests, evals = [], []
    for fold in range(10):
        loaded = load_data(DataConfig(name="hyperpartisan", root=str(hyperpartisan_root), options={"fold": fold}))
        splits = loaded.splits
        ids = {s: {e.uid for e in splits[s]} for s in splits}
        assert not (ids["train"] & ids["eval"]) and not (ids["train"] & ids["test"]) and not (ids["eval"] & ids["test"])
        assert len(ids["train"]) + len(ids["eval"]) + len(ids["test"]) == 645
        assert 515 <= len(ids["train"]) <= 517 and 64 <= len(ids["test"]) <= 65
        for split in ("eval", "test"):
            hyper = sum(e.label == "true" for e in splits[split])
            assert abs(hyper - 238 / 10) < 1 and abs(len(splits[split]) - hyper - 407 / 10) < 1
        tests.append(ids["test"])
        evals.append(ids["eval"])
    assert set().union(*tests) == {u for t in tests for u in t} and len(set().union(*tests)) == 645
    assert all(evals[k] == tests[(k + 1) % 10] for k in range(10))
    again = load_data(DataConfig(name="hyperpartisan", root=str(hyperpartisan_root), options={"fold": 3}))
    assert {e.uid for e in again.splits["test"]} == tests[3]


def test_folds_do_not_depend_on_input_order():
    examples = [Example(f"{i:07d}", "en", ["w"], "true" if i % 3 == 0 else "false") for i in range(97)]
    forward = [sorted(e.uid for e in fold) for fold in stratified_folds(examples, 10, seed=0)]
    backward = [sorted(e.uid for e in fold) for fold in stratified_folds(examples[::-1], 10, seed=0)]
    assert forward == backward
    assert max(map(len, forward)) - min(map(len, forward)) <= 1


def write_release(folder, articles, labels, compress=True):
    """Write the two XML files; `articles` are (id, inner xml), `labels` (id, hyperpartisan value)."""
    folder.mkdir(parents=True, exist_ok=True)
    article_xml = '<?xml version="1.0" encoding="UTF-8"?><articles>\n' + "".join(
        f'\t<article id="{i}" title="t{i}">\n{body}\n</article>\n' for i, body in articles
    ) + "</articles>\n"
    label_xml = '<?xml version="1.0" ?>\n<articles>\n' + "".join(
        f'\t<article hyperpartisan="{value}" id="{i}" labeled-by="article"/>\n' for i, value in labels
    ) + "</articles>\n"
    for name, text in ((hyperpartisan.ARTICLES, article_xml), (hyperpartisan.GROUND_TRUTH, label_xml)):
        data = text.encode() if isinstance(text, str) else text
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def small_release(folder, count=30, **changes):
    articles = [(f"{i:07d}", f"<p>Article {i} says <a href='x'>this</a> and <q>that</q>.</p>") for i in range(count)]
    labels = [(f"{i:07d}", "true" if i % 3 == 0 else "false") for i in range(count)]
    for key, value in changes.items():
        if key == "article":
            articles[value[0]] = value[1]
        if key == "label":
            labels[value[0]] = value[1]
    write_release(folder, articles, labels)


def hyperpartisan_config(root, **options):
    return DataConfig(name="hyperpartisan", root=str(root), options=options)


def test_hyperpartisan_reads_markup_text(tmp_path):
    small_release(tmp_path)
    loaded = load_data(hyperpartisan_config(tmp_path))
    example = next(e for split in loaded.splits.values() for e in split if e.uid == "0000004")
    assert example.words == ["Article", "4", "says", "this", "and", "that", "."]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"article": (4, ("0000004", "  <p> </p> "))}, r"articles-training-byarticle-20181122\.xml\.gz:14: article 0000004 is empty"),
        ({"label": (5, ("0000005", "maybe"))}, r"ground-truth-training-byarticle-20181122\.xml\.gz:8: article 0000005: unknown label hyperpartisan='maybe'"),
        ({"label": (6, ("9999999", "true"))}, r"article 0000006 has no label"),
        ({"article": (2, ("0000002", "<p>unclosed"))}, r"articles-training-byarticle-20181122\.xml\.gz:\d+: malformed XML"),
    ],
)
def test_hyperpartisan_malformed_records_name_file_and_line(tmp_path, change, message):
    small_release(tmp_path, **change)
    with pytest.raises(DataError, match=message):
        load_data(hyperpartisan_config(tmp_path))


def test_hyperpartisan_invalid_utf8_and_truncated_gzip(tmp_path):
    small_release(tmp_path)
    articles = tmp_path / (hyperpartisan.ARTICLES + ".gz")
    text = gzip.decompress(articles.read_bytes())
    articles.write_bytes(gzip.compress(text.replace(b"Article 7 says", b"Article \xff7 says")))
    with pytest.raises(DataError, match=r"articles-training-byarticle-20181122\.xml\.gz:24: invalid UTF-8"):
        load_data(hyperpartisan_config(tmp_path))
    articles.write_bytes(gzip.compress(text)[:-30])
    with pytest.raises(DataError, match=r"articles-training-byarticle-20181122\.xml\.gz:\d+: truncated or corrupt gzip"):
        load_data(hyperpartisan_config(tmp_path))


def test_hyperpartisan_fold_option_is_checked(tmp_path):
    small_release(tmp_path)
    with pytest.raises(ConfigError, match=r"data.options.fold must be 0..9, got 10"):
        load_data(hyperpartisan_config(tmp_path, fold=10))
    with pytest.raises(ConfigError, match="data.options.split must be cv10 or longformer"):
        load_data(hyperpartisan_config(tmp_path, split="random"))


def test_longformer_split_is_read_from_its_file(tmp_path):
    small_release(tmp_path)
    # A file in the layout of Longformer's hp-splits.json (integer article ids), made up for the test.
    split_file = tmp_path / "hp-splits.json"
    split_file.write_text(json.dumps({"train": list(range(24)), "dev": [24, 25, 26], "test": [27, 28, 29]}))
    loaded = load_data(hyperpartisan_config(tmp_path, split="longformer", split_file=str(split_file)))
    assert [e.uid for e in loaded.splits["eval"]] == ["0000024", "0000025", "0000026"]
    assert len(loaded.splits["train"]) == 24 and loaded.report["articles_in_no_split"] == 0
    split_file.write_text(json.dumps({"train": [0, 1], "dev": [1], "test": [2]}))
    with pytest.raises(DataError, match="hp-splits.json: article id 1 is listed twice"):
        load_data(hyperpartisan_config(tmp_path, split="longformer", split_file=str(split_file)))
    split_file.write_text(json.dumps({"train": [0, 1000], "dev": [1], "test": [2]}))
    with pytest.raises(DataError, match="hp-splits.json: train: unknown article id 1000"):
        load_data(hyperpartisan_config(tmp_path, split="longformer", split_file=str(split_file)))


def test_longformer_split_without_its_file_says_how_to_get_it(tmp_path):
    small_release(tmp_path)
    with pytest.raises(DataError, match="allenai/longformer/master/scripts/hp-splits.json"):
        load_data(hyperpartisan_config(tmp_path, split="longformer"))


def test_hyperpartisan_online_path_fetches_zenodo_and_the_split_file(tmp_path, monkeypatch):
    """Up to the network boundary: the two Zenodo archives and Longformer's split file are asked of
    `datasets`' download manager; stand-ins for what it would extract are read."""
    import datasets

    small_release(tmp_path / "release")
    (tmp_path / "split.json").write_text(json.dumps({"train": list(range(20)), "dev": list(range(20, 25)), "test": list(range(25, 30))}))
    served = {
        hyperpartisan.DOWNLOAD_URLS[hyperpartisan.ARTICLES]: tmp_path / "release",
        hyperpartisan.DOWNLOAD_URLS[hyperpartisan.GROUND_TRUTH]: tmp_path / "release",
        hyperpartisan.LONGFORMER_SPLITS_URL: tmp_path / "split.json",
    }
    requested = []

    def fake_download_and_extract(self, url):
        requested.append(url)
        return str(served[url])

    monkeypatch.setattr(datasets.DownloadManager, "download_and_extract", fake_download_and_extract)
    config = DataConfig(name="hyperpartisan", root=str(tmp_path / "absent"), download=True, options={"split": "longformer"})
    loaded = load_data(config)
    assert requested == [
        "https://zenodo.org/record/1489920/files/articles-training-byarticle-20181122.zip",
        "https://zenodo.org/record/1489920/files/ground-truth-training-byarticle-20181122.zip",
        hyperpartisan.LONGFORMER_SPLITS_URL,
    ]
    assert [len(loaded.splits[s]) for s in ("train", "eval", "test")] == [20, 5, 5]


# --- configs and the classification head end to end ---------------------------------------------


@pytest.mark.parametrize(("data", "max_length", "monitor"), [("imdb", 1024, "accuracy"), ("hyperpartisan", 2048, "f1")])
def test_long_input_configs(data, max_length, monitor):
    from helpers import compose_config

    cfg = compose_config([f"data={data}", "model=mixer_xs"])
    assert cfg.data.max_length == max_length and cfg.data.head == "classification" and cfg.data.monitor == monitor
    assert cfg.quantize.int8 is False


@pytest.mark.slow
@pytest.mark.shared
def test_hyperpartisan_smoke_run_end_to_end(shared_data, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pnlp_bench.cli", "run", "model=mixer_xs", "data=hyperpartisan", "trainer=smoke",
         f"data.root={shared_data / 'hyperpartisan'}", "quantize.int8=true", "quiet=true"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": path, "BENCH_OUTPUT_ROOT": str(tmp_path)},
        capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (metrics_path,) = tmp_path.glob("runs/hyperpartisan/mixer_xs-*/metrics.json")
    record = json.loads(metrics_path.read_text())
    assert record["metrics"]["test"]["avg"]["examples"] == record["data_report"]["test"]
    assert {"accuracy", "f1", "macro_f1"} <= set(record["metrics_int8"]["test"]["avg"])
    assert record["parameters"]["total"] > 2_000_000  # the token-mixing MLP grows with S = 2048


def test_train_limit_takes_a_mixed_sample_not_the_first_label_of_the_file(tmp_path):
    # The IMDB files list every negative review before the positive ones.
    lines = [json.dumps({"text": f"review {i}", "label": int(i >= 100), "id": i}) for i in range(200)]
    imdb_jsonl(tmp_path, lines)
    loaded = load_data(DataConfig(name="imdb", root=str(tmp_path), train_limit=40, options={"eval_size": 20}))
    assert 10 <= sum(e.label == "pos" for e in loaded.splits["train"]) <= 30
