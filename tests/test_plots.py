"""The figures `bench report` draws and the table text a reader sees: the plot kind each table file asks for,
legends named by table rows, axis labels in words, readable log ticks, LaTeX escaping and the one-sentence
error cell. Figures are inspected as matplotlib objects, never as pixels; nothing trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pnlp_bench.commands import plots
from pnlp_bench.commands import table as tables
from pnlp_bench.commands.report import report, table_plots
from pnlp_bench.commands.table_files import cell_error, latex_escape, render_latex
from pnlp_bench.core.registry import ConfigError
from test_tables import TINY_TABLE

ROOT = Path(__file__).resolve().parents[1]
BERT_ERROR = ("DataError: projection=bert: the 'bert-base-multilingual-cased' weights are not available here (We "
              "couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached "
              "files.); set projection.download=true on a machine with internet, or point projection.weights at a "
              "local folder")


def cell(row: str, column: str = "EM", mean: float | None = 60.0, std: float | None = None, paper: float | None = 80.0,
         metric: str = "eval/en/exact_match", **extra) -> dict:
    return {"row": row, "column": column, "precision": "fp32", "metric": metric, "ours_mean": mean, "ours_std": std,
            "paper": paper, "paper_source": "[T]", "paper_note": "", "params": None, "paper_params": "",
            "not_run": "", "difference": None if mean is None or paper is None else mean - paper, "seeds": [0],
            "dates": ["2026-12-01"], "run_dirs": [f"/runs/{row}-{column}"], **extra}


def history_record(run_dir: str, monitor: str, data: str = "mtop", seed: int = 0) -> dict:
    return {"status": "finished", "run_dir": run_dir, "monitor": monitor, "data": data, "seed": seed,
            "history": [{"epoch": epoch, f"eval_{monitor}": 10.0 * epoch} for epoch in (1, 2, 3)]}


@pytest.mark.parametrize("name, kind", [("1", "bars"), ("2", "bars"), ("3", "bars"), ("4", "grouped_bars"),
                                        ("5", "params"), ("6", "params"), ("7", "bars"), ("fidelity", "bars"),
                                        ("precision", "bars")])
def test_each_table_file_names_its_plot_kind(name, kind, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert tables.load_spec(name).plot.kind == kind


def test_a_table_without_plot_draws_bars_of_its_first_column_and_a_bad_plot_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    path = tmp_path / "experiments" / "table99.yaml"
    path.write_text(TINY_TABLE)
    spec = tables.load_spec("99")
    assert (spec.plot.kind, spec.plot_columns()) == ("bars", ["EM"])
    for bad, message in (("plot: pie", "not one of"), ("plot: {kind: bars, columns: [nope]}", "not a column"),
                         ("plot: {kind: grouped_bars, series: [big]}", "<group>, <series>")):
        path.write_text(TINY_TABLE + bad + "\n")
        with pytest.raises(ConfigError, match=message):
            tables.load_spec("99")


def test_report_draws_the_kind_the_table_asks_for_and_removes_a_stale_one(tmp_path):
    table = {"table": "5", "title": "sizes", "budget": "cpu", "plot": {"kind": "params", "columns": ["avg"]},
             "cells": [cell(row, "avg", mean, paper=None, params=params, paper_params=text)
                       for row, mean, params, text in (("X-SMALL", 50.0, 215_000, "200K"), ("BASE", 60.0, 1_180_000, "1.2M"))]}
    path = tmp_path / "table5.json"
    path.write_text(json.dumps(table))
    (tmp_path / "bars_table5.png").write_bytes(b"stale")
    links = table_plots(path, table, [])
    assert links == ["[score vs parameters](params_vs_score_table5.png)"]
    assert (tmp_path / "params_vs_score_table5.png").exists() and not (tmp_path / "bars_table5.png").exists()
    table["plot"] = {"kind": "bars", "columns": ["avg"]}
    assert table_plots(path, table, []) == ["[scores by row](bars_table5.png)"]
    assert not (tmp_path / "params_vs_score_table5.png").exists()


def test_the_readme_lists_the_other_reports_in_one_table_titled_by_their_heading(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "speed.md").write_text("Generated.\n\n# Speed: ours | dense\n\n## Detail\n")
    (results / "speed.json").write_text("{}")
    (results / "notes.md").write_text("no heading here\n")
    readme = report(results, tmp_path / "outputs").read_text()
    assert "Also:" not in readme
    lines = readme.splitlines()
    start = lines.index("## Other results")
    assert lines[start + 2:] == ["| file | what it holds | files |", "|---|---|---|",
                                 "| [notes](notes.md) | — | [md](notes.md) |",
                                 "| [speed](speed.md) | Speed: ours \\| dense | [md](speed.md) · [json](speed.json) |"]


def test_bars_are_labelled_by_row_with_the_paper_marked_and_the_legend_saying_what_has_no_number():
    table = {"table": "1", "title": "projections", "budget": "paper", "plot": {"kind": "bars", "columns": ["EM"]},
             "cells": [cell("MinHash", mean=65.2, std=0.5, seeds=[0, 1]), cell("Binary", mean=60.0, paper=None),
                       cell("BERT embeddings", mean=None, paper=None, not_run=BERT_ERROR)]}
    figure = plots.bars_figure(table)
    (axes,) = figure.axes
    assert [label.get_text() for label in axes.get_yticklabels()] == ["MinHash", "Binary", "BERT embeddings"]
    assert len(axes.patches) == 2  # a bar for each row with a number, none for the one that could not run
    from matplotlib.container import ErrorbarContainer

    assert sum(isinstance(each, ErrorbarContainer) for each in axes.containers) == 1  # MinHash's std; Binary has n=1
    ticks = [line for line in axes.get_lines() if line.get_gid() == "paper"]
    assert [tuple(line.get_xdata()) for line in ticks] == [(80.0,)]  # only MinHash has a paper number
    texts = [text.get_text() for text in axes.texts]
    assert "not run here: mBERT weights not available offline" in texts and "65.2 ± 0.5" in texts
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == ["ours (paper budget)", "paper (no tick: no paper number)"]
    assert axes.get_xlabel() == "eval exact match (%)"


def test_grouped_bars_put_each_series_in_its_group():
    series = ["small mixer", "large mixer"]
    table = {"table": "4", "title": "F x mixer", "budget": "cpu",
             "plot": {"kind": "grouped_bars", "columns": ["EM"], "series": series},
             "cells": [cell(f"F {f}, {s}", paper=None) for f in (1024, 2048) for s in series]}
    figure = plots.bars_figure(table)
    (axes,) = figure.axes
    assert [label.get_text() for label in axes.get_yticklabels()] == ["F 1024", "F 2048"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "ours (cpu budget): small mixer", "ours (cpu budget): large mixer", "paper: no number for any row"]


def test_curves_are_named_by_row_with_one_panel_per_data_set_and_metric_in_words():
    table = {"table": "7", "title": "long inputs", "budget": "cpu", "cells": [
        cell(row, column, metric=metric) for row in ("X-SMALL", "BASE")
        for column, metric in (("IMDB acc", "test/avg/accuracy"), ("Hyperpartisan F1", "test/avg/f1"))]}
    records = [history_record(f"/runs/{row}-IMDB acc", "accuracy", "imdb") for row in ("X-SMALL", "BASE")]
    records += [history_record(f"/runs/{row}-Hyperpartisan F1", "f1", "hyperpartisan") for row in ("X-SMALL", "BASE")]
    figure = plots.curves_figure(table, records)
    imdb, hyperpartisan = figure.axes
    assert [text.get_text() for text in imdb.get_legend().get_texts()] == ["X-SMALL", "BASE"]
    assert (imdb.get_title(), imdb.get_ylabel(), imdb.get_xlabel()) == ("IMDB acc", "eval accuracy (%)", "epoch")
    assert (hyperpartisan.get_title(), hyperpartisan.get_ylabel()) == ("Hyperpartisan F1", "eval F1 (%)")


def test_per_language_runs_get_a_panel_each_named_by_their_language_and_the_mean_column_none():
    languages = ("en", "fr")
    table = {"table": "5", "title": "languages", "budget": "paper", "cells": [
        cell("X-SMALL", language, metric=f"test/{language}/exact_match") for language in languages]}
    table["cells"].append(cell("X-SMALL", "avg", metric="test/avg/exact_match",
                               run_dirs=[f"/runs/X-SMALL-{language}" for language in languages]))
    records = [{**history_record(f"/runs/X-SMALL-{language}", "exact_match"), "monitor_language": "avg",
                "data_report": {f"{language}/train": {}, f"{language}/eval": {}}} for language in languages]
    figure = plots.curves_figure(table, records)
    assert [(axes.get_title(), axes.get_ylabel()) for axes in figure.axes] == [
        ("English", "eval exact match, English (%)"), ("French", "eval exact match, French (%)")]
    # one pooled run read by every column: one panel, its metric the mean over the languages
    pooled = {**table, "cells": [{**each, "run_dirs": ["/runs/pooled"]} for each in table["cells"]]}
    both = {"en/train": {}, "fr/train": {}}
    (axes,) = plots.curves_figure(pooled, [{**history_record("/runs/pooled", "exact_match"),
                                            "monitor_language": "avg", "data_report": both}]).axes
    assert axes.get_ylabel() == "eval exact match, average over languages (%)"


def test_a_column_drawn_by_other_panels_is_left_out_but_every_run_keeps_a_panel():
    table = {"cells": [cell("A", "x", run_dirs=["1", "2"]), cell("A", "y", run_dirs=["2", "3"]),
                       cell("A", "z", run_dirs=["1", "3"]), cell("A", "w", run_dirs=["1", "2", "3"])]}
    assert [columns for columns, _ in plots.curve_panels(table)] == [["x"], ["y"]]


def test_a_row_with_several_seeds_names_each_curve_by_its_seed():
    assert plots.curve_labels([("MinHash", 0), ("MinHash", 1), ("TSP", 0)]) == ["MinHash, seed 0", "MinHash, seed 1", "TSP"]


def test_axis_labels_are_words_not_record_paths():
    assert plots.metric_words("eval/en/exact_match", languages=False) == "eval exact match (%)"
    assert plots.metric_words("test/avg/exact_match") == "test exact match, average over languages (%)"
    assert plots.metric_words("eval/en/intent_accuracy") == "eval intent accuracy, English (%)"
    assert plots.metric_words("eval//mlm_loss", languages=False) == "eval MLM loss"  # a loss, not a percentage


def test_the_parameter_axis_is_logarithmic_with_short_distinct_tick_labels():
    table = {"table": "6", "title": "sizes", "budget": "paper", "plot": {"kind": "params", "columns": ["avg"]},
             "cells": [cell(row, "avg", mean, paper=paper, params=params, paper_params=text, metric="test/avg/intent_accuracy")
                       for row, mean, paper, params, text in (("X-SMALL", 89.8, 90.0, 215_000, "200K"),
                                                              ("BASE", 91.0, 92.1, 1_180_000, "1.2M"),
                                                              ("X-LARGE", None, 91.3, None, "4.4M"))]}
    figure = plots.params_figure(table)
    (axes,) = figure.axes
    figure.canvas.draw()
    assert axes.get_xscale() == "log" and axes.get_xlabel() == "parameters"
    low, high = axes.get_xlim()
    shown = [tick.get_text() for tick, x in zip(axes.get_xticklabels(), axes.get_xticks()) if low <= x <= high]
    assert shown == ["200K", "500K", "1M", "2M"] or shown == ["200K", "500K", "1M", "2M", "5M"]
    assert not any(label.get_text() for label in axes.get_xminorticklabels())  # minor ticks unlabelled: no collisions
    assert plots.count_text(200_000) == "200K" and plots.count_text(1.2e6) == "1.2M"


def test_latex_escapes_what_latex_reads_as_commands():
    assert latex_escape("50% of a_b & c ± 1.0") == r"50\% of a\_b \& c $\pm$ 1.0"
    assert latex_escape("{x} #1 $2 ~ ^ \\") == r"\{x\} \#1 \$2 \textasciitilde{} \textasciicircum{} \textbackslash{}"
    assert latex_escape("budget `cpu`: -15.6, lr 5e-4, — [T]") == r"budget \texttt{cpu}: $-$15.6, lr 5e-4, --- [T]"
    assert latex_escape("[2nd] source").startswith("{}[")  # not read as the optional argument of the row's \\


def test_the_latex_table_has_the_markdown_cells_in_booktabs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "table99.yaml").write_text(TINY_TABLE.replace("X-SMALL", "X_SMALL & co"))
    spec = tables.load_spec("99")
    cells = [{**cell("X_SMALL & co", "EM", 65.2, 0.5, 76.9, epochs=[1]), "paper_source": "[made up for the test]"},
             {**cell("X_SMALL & co", "intent", None, None, None, epochs=[]), "not_run": "RuntimeError: boom"}]
    latex = render_latex(spec, tables.display_columns(spec), "smoke", cells)
    for needed in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{Table 99: tiny smoke table.", r"\label{tab:table99}",
                   r"X\_SMALL \& co & fp32 & --- / --- & 65.2 $\pm$ 0.5 / 76.9 [made up for the test] / $-$11.7 & "
                   r"run failed: boom / --- \\", r"Budget \texttt{smoke}: a smoke budget"):
        assert needed in latex, needed


def test_an_error_cell_says_one_short_sentence():
    assert cell_error(BERT_ERROR) == "not run here: mBERT weights not available offline"
    assert cell_error("DataError: IMDB not found (looked for train.jsonl in: /data); see the README") == \
        "not run here: its data is not on this machine"
    assert cell_error("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB") == "run failed: out of memory"
    long = cell_error("ValueError: " + "a very long explanation " * 10 + "(with details)")
    assert long.startswith("run failed: a very long explanation") and len(long) < 80 and long.endswith("…")
    assert cell_error("") == "run failed: unknown error"
