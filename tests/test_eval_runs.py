"""predictions.jsonl, `bench eval` and `bench runs` on two tiny runs (seeds 0 and 1) of the embedded MTOP
sample, trained once by one `bench run --multirun`. Another language is made from the sample: a German
folder whose copy of the English files renames some intents and slots, so some gold labels are unknown to
the model and must be counted, and counted wrong."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pnlp_bench.cli import main
from pnlp_bench.core import store
from pnlp_bench.mixer.predictions import read_predictions, recompute_metrics

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pnlp_bench" / "assets" / "mtop_sample" / "en"
TINY = ["data=mtop_sample", "model=mixer_xs", "trainer=smoke", "trainer.epochs=1", "data.train_limit=40",
        "data.eval_limit=20", "data.test_limit=20", "quantize.int8=true", "quiet=true"]
GERMAN_TEST = 30


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output root of two finished tiny runs, seeds 0 and 1."""
    root = tmp_path_factory.mktemp("sweep")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pnlp_bench.cli", "run", "--multirun", *TINY, "seed=0,1", f"output_root={root / 'outputs'}"],
        cwd=root, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "outputs"


def run_dirs(output_root: Path) -> list[Path]:
    folders = sorted(output_root.glob("runs/mtop_sample/mixer_xs-*"))
    assert len(folders) == 2
    return folders


def record_of(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def bench(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """`bench <args>` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as ended:
        main(list(args))
    captured = capsys.readouterr()
    return ended.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MTOP root with en and de: de is the English sample with every 4th intent renamed IN:MADE_UP and the
    DATE_TIME slot of every 5th row renamed SL:MADE_UP (names no model trained on en has seen)."""
    root = tmp_path_factory.mktemp("mtop")
    for split in ("train", "eval", "test"):
        lines = gzip.open(SAMPLE / f"{split}.txt.gz", "rt", encoding="utf-8").read().splitlines()
        renamed = []
        for index, line in enumerate(lines):
            columns = line.split("\t")
            if index % 4 == 0:
                columns[1] = "IN:MADE_UP"
            if index % 5 == 0:
                columns[2] = columns[2].replace("SL:DATE_TIME", "SL:MADE_UP")
            renamed.append("\t".join(columns))
        for lang, rows in (("en", lines), ("de", renamed)):
            (root / lang).mkdir(exist_ok=True)
            (root / lang / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_predictions_jsonl_gives_back_the_records_metrics_exactly(sweep):
    for folder in run_dirs(sweep):
        record = record_of(folder)
        assert record["predictions"] == "predictions.jsonl"
        assert recompute_metrics(folder / "predictions.jsonl") == record["metrics"]
        assert recompute_metrics(folder / "predictions_int8.jsonl") == record["metrics_int8"]
        splits = read_predictions(folder / "predictions.jsonl")
        assert {split: len(examples) for split, (examples, _) in splits.items()} == {"eval": 20, "test": 20}
        labels = torch.load(folder / "best.pt", weights_only=False)["label_space"]["labels"]
        for examples, predicted in splits.values():
            assert set(predicted["labels"]) <= set(labels)
            assert all(0.0 < probability <= 1.0 for probability in predicted["probabilities"])
            assert [len(tags) for tags in predicted["tags"]] == [len(example.words) for example in examples]


def test_recomputing_from_predictions_notices_a_changed_line(sweep, tmp_path):
    folder = run_dirs(sweep)[0]
    lines = (folder / "predictions.jsonl").read_text().splitlines()
    # flip the intent of a test line: right becomes wrong, wrong becomes right
    index = next(i for i, line in enumerate(lines) if json.loads(line)["split"] == "test")
    line = json.loads(lines[index])
    line["predicted"] = "IN:NOT_A_LABEL" if line["predicted"] == line["label"] else line["label"]
    lines[index] = json.dumps(line)
    changed = tmp_path / "predictions.jsonl"
    changed.write_text("\n".join(lines) + "\n")
    recorded = record_of(folder)["metrics"]["test"]["avg"]["intent_accuracy"]
    assert recompute_metrics(changed)["test"]["avg"]["intent_accuracy"] == pytest.approx(recorded + (5.0 if line["predicted"] == line["label"] else -5.0))


def test_eval_on_the_runs_own_data_reproduces_its_test_metrics(sweep, capsys):
    folder = run_dirs(sweep)[0]
    code, out, err = bench(capsys, "eval", str(folder), "quiet=true")
    assert code == 0, err
    (evaluation,) = folder.glob("eval/*/metrics.json")
    record = json.loads(evaluation.read_text())
    assert record["metrics"] == {"test": record_of(folder)["metrics"]["test"]}
    assert record["metrics_int8"] == {"test": record_of(folder)["metrics_int8"]["test"]}


def test_eval_on_another_language_counts_unknown_labels_and_is_skipped_the_second_time(sweep, german, capsys):
    folder = run_dirs(sweep)[1]
    source = record_of(folder)
    arguments = ["eval", str(folder), "data=mtop", f"data.root={german}", "data.languages=[de]",
                 f"data.test_limit={GERMAN_TEST}", "split=test", "quantize.int8=false"]
    before = sum(1 for _ in store.records(sweep))
    code, out, err = bench(capsys, *arguments)
    assert code == 0, err
    evaluations = [path for path in folder.glob("eval/*/metrics.json") if json.loads(path.read_text())["data"] == "mtop"]
    (path,) = evaluations
    record = json.loads(path.read_text())
    assert record["status"] == "finished" and record["budget"] == f"evaluation of {source['config_hash']}"
    assert record["config_hash"] not in (source["config_hash"], path.parent.parent.name)
    assert path.parent.name == record["config_hash"] and record["evaluation"]["source"]["config_hash"] == source["config_hash"]
    assert set(record["metrics"]["test"]) == {"de", "avg"} and record["metrics"]["test"]["avg"]["examples"] == GERMAN_TEST
    assert "metrics_int8" not in record
    # unknown gold labels: counted from the files and the checkpoint here, and every one of them predicted wrong
    known = set(torch.load(folder / "best.pt", weights_only=False)["label_space"]["labels"])
    (examples, predicted), = read_predictions(path.parent / "predictions.jsonl").values()
    unknown = [index for index, example in enumerate(examples) if example.label not in known]
    assert any(example.label == "IN:MADE_UP" for example in examples)
    assert record["evaluation"]["unknown_labels"]["examples"] == len(unknown) > 0
    assert record["evaluation"]["unknown_labels"]["names"]["IN:MADE_UP"] == sum(e.label == "IN:MADE_UP" for e in examples)
    assert all(predicted["labels"][index] != examples[index].label for index in unknown)
    assert record["evaluation"]["unknown_tags"]["names"].get("B-MADE_UP", 0) >= 1
    assert recompute_metrics(path.parent / "predictions.jsonl") == record["metrics"]
    stored = [line for line in store.records(sweep) if line.get("config_hash") == record["config_hash"]]
    assert len(stored) == 1 and stored[0]["status"] == "finished"
    written = path.read_text()
    code, out, err = bench(capsys, *arguments)
    assert code == 0, err
    assert "already evaluated" in out.replace("\n", " ")
    assert path.read_text() == written and sum(1 for _ in store.records(sweep)) == before + 1
    # another split is another evaluation
    code, out, err = bench(capsys, *arguments[:-2], "split=eval", "quiet=true")
    assert code == 0, err
    assert len({json.loads(p.read_text())["config_hash"] for p in folder.glob("eval/*/metrics.json")}) == 2


def test_eval_errors_are_one_line(sweep, german, tmp_path, capsys):
    folder = run_dirs(sweep)[0]
    without_best = tmp_path / "runs" / "mtop_sample" / "mixer_xs-copy"
    shutil.copytree(folder, without_best, ignore=shutil.ignore_patterns("eval", "*.pt"))
    cases = {
        (str(tmp_path / "nowhere"),): "no such run folder",
        (str(without_best),): "best.pt: no checkpoint",
        (str(folder), "data.no_such_key=1"): "data: unknown key 'no_such_key'; valid keys:",
        (str(folder), "trainer.lr=0.1"): "unknown override 'trainer.lr'",
        (str(folder), "data=no_such_data"): "data=no_such_data: no such data config; available: atis,",
        (str(folder), "data.max_length=32"): "the run's model fixes data.max_length (64)",
        (str(folder), "split=dev2"): "split must be one of train, eval, test",
        (str(folder), "data=mtop", f"data.root={german}", "data.languages=[fr]"): "fr/train.txt",
    }
    for arguments, expected in cases.items():
        code, out, err = bench(capsys, "eval", *arguments)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (arguments, err)


def runs_json(capsys: pytest.CaptureFixture, output_root: Path, *extra: str) -> list[dict]:
    code, out, err = bench(capsys, "runs", "--output-root", str(output_root), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_runs_lists_every_state_and_groups_seeds_into_mean_and_std(sweep, tmp_path, capsys):
    output_root = tmp_path / "outputs"
    shutil.copytree(sweep, output_root, ignore=shutil.ignore_patterns("eval"))
    finished = run_dirs(output_root)
    data = output_root / "runs" / "mtop_sample"
    for name in ("interrupted", "failed", "running"):
        shutil.copytree(finished[0], data / f"mixer_xs-{name}")
        (data / f"mixer_xs-{name}" / "metrics.json").unlink()
    (data / "mixer_xs-failed" / "metrics.json").write_text(json.dumps({"status": "failed", "error": "OSError: disk full\nmore"}))
    (data / "mixer_xs-running" / ".run.holder").write_text(f"pid {os.getpid()} on {socket.gethostname()}\n")
    listed = runs_json(capsys, output_root)
    by_name = {Path(run["folder"]).name: run for run in listed}
    assert len(listed) == 5
    assert by_name["mixer_xs-interrupted"]["status"] == "interrupted at epoch 1"
    assert by_name["mixer_xs-failed"]["status"] == "failed" and by_name["mixer_xs-failed"]["error"] == "OSError: disk full"
    assert by_name["mixer_xs-running"]["status"] == "running at epoch 1"
    assert [run["date"] for run in listed] == sorted((run["date"] for run in listed), reverse=True)
    for folder in finished:
        run = by_name[folder.name]
        record = record_of(folder)
        assert run["status"] == "finished" and run["seed"] == record["seed"]
        assert run["overrides"] == {"data.train_limit": 40, "data.eval_limit": 20, "data.test_limit": 20,
                                    "trainer.epochs": 1, "quantize.int8": True}
        assert run["best"] == max(epoch["eval_exact_match"] for epoch in record["history"])
        assert run["score"] == record["metrics"]["test"]["avg"]["exact_match"]
    assert {run["seed"] for run in runs_json(capsys, output_root, "--data", "mtop_*", "--model", "mixer_xs")} == {0, 1}
    assert runs_json(capsys, output_root, "--model", "mixer_base") == []

    metric = "test/en/slot_token_accuracy"
    values = [record_of(folder)["metrics"]["test"]["en"]["slot_token_accuracy"] for folder in finished]
    (group,) = runs_json(capsys, output_root, "--group-by", "model,size.num_layers", "--metric", metric)
    assert group["model"] == "mixer_xs" and group["size.num_layers"] == 2 and group["n"] == 2 and group["seeds"] == [0, 1]
    assert group["mean"] == pytest.approx(statistics.fmean(values)) and group["std"] == pytest.approx(statistics.stdev(values))
    assert group["metric"] == [metric] and group["varies"] == []
    code, out, err = bench(capsys, "runs", "--output-root", str(output_root), "--group-by", "model")
    assert code == 0 and "mixer_xs" in out and "± " in out


def test_long_documents_keep_a_capped_prefix_and_still_give_back_their_metrics(tmp_path):
    from pnlp_bench.mixer.data.base import Example
    from pnlp_bench.mixer.metrics import scorer
    from pnlp_bench.mixer.predictions import WORDS_KEPT, write_predictions

    examples = [Example(f"doc{i}", "en", [f"w{j}" for j in range(10 + 300 * i)], "pos" if i % 2 else "neg") for i in range(5)]
    predicted = {"labels": ["pos", "pos", "neg", "pos", "neg"], "tags": [], "probabilities": [0.9, 0.6, 0.7, 0.8, 0.55]}
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, [("test", examples, predicted)])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["words"] == examples[0].words and "words_total" not in lines[0] and "tags" not in lines[0]
    assert all(len(line["words"]) == WORDS_KEPT and line["words_total"] == len(example.words) and len(line["text_sha256"]) == 64
               for line, example in zip(lines[1:], examples[1:]))
    assert recompute_metrics(path) == {"test": scorer("classification")(examples, predicted)}
