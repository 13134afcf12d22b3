"""The figures `bench report` draws beside a table, from its `results/<stem>.json` and the runs' histories.

- `bars_<stem>.png` (the table file's `plot: bars` or `grouped_bars`, rows that are categories): one bar per
  row, ours the mean over seeds with the std as an error bar where more than one run, the paper's value a black
  tick on the bar (no tick where the paper gives no number, which the legend says), one panel per plotted column;
- `params_vs_score_<stem>.png` (`plot: params`, rows that are size presets): the score against parameters on
  a log axis, ours (fp32, and int8 where the table has it) and the paper's, each point named by its row;
- `curves_<stem>.png`: the selection metric per epoch of every run behind the table, each line named by its
  table row, one panel per set of runs (Table 7: IMDB and Hyperpartisan are different runs and metrics).
Axis labels are words (`eval exact match (%)`), never a record's internal path.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from pnlp_bench.commands.table_files import cell_error

PARAM_SUFFIX = {"K": 1e3, "M": 1e6}
METRIC_WORDS = {
    "exact_match": "exact match", "intent_accuracy": "intent accuracy", "accuracy": "accuracy", "f1": "F1",
    "slot_f1": "slot F1", "tags_exact": "tags exact", "slot_token_accuracy": "slot token accuracy", "mcc": "MCC",
    "mlm_loss": "MLM loss",
}
DATA_NAMES = {"mtop": "MTOP", "atis": "ATIS", "multiatis": "multiATIS++", "imdb": "IMDB", "hyperpartisan": "Hyperpartisan"}
UNITLESS = {"perplexity", "loss", "mlm_loss"}
LANGUAGES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "hi": "Hindi", "th": "Thai",
             "pt": "Portuguese", "zh": "Chinese", "ja": "Japanese", "tr": "Turkish"}
# the paper's value on a bar: a red stroke across it, unlike the thin black caps of the error bars
PAPER_TICK = {"marker": "|", "markersize": 18, "markeredgewidth": 3, "color": "#d62728", "linestyle": "none"}


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def paper_params(text: str) -> float | None:
    text = text.split("/")[0].strip()
    if text and text[-1] in PARAM_SUFFIX:
        try:
            return float(text[:-1]) * PARAM_SUFFIX[text[-1]]
        except ValueError:
            return None
    return None


def count_text(value: float, _position: Any = None) -> str:
    """200000 -> 200K, 1.2e6 -> 1.2M: a parameter axis's tick labels."""
    for suffix, scale in (("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def one_decimal(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def metric_words(metric: str, languages: bool = True) -> str:
    """A cell's `split/language/metric` as a reader says it: "eval exact match, English (%)"; the language is
    named only where the table has more than one (`languages`)."""
    split, language, name = (metric.split("/") + ["", "", ""])[:3]
    words = " ".join(filter(None, [split, METRIC_WORDS.get(name, name.replace("_", " "))]))
    if languages and language:
        words += ", average over languages" if language == "avg" else f", {LANGUAGES.get(language, language)}"
    return words if name in UNITLESS else f"{words} (%)"


def several_languages(table: dict[str, Any]) -> bool:
    return len({cell["metric"].split("/")[1] for cell in table["cells"] if cell["metric"].count("/") == 2}) > 1


def plot_spec(table: dict[str, Any]) -> dict[str, Any]:
    """The json's `plot` (written by `bench table` from the table file); tables rendered before it: bars."""
    columns = list(dict.fromkeys(cell["column"] for cell in table["cells"]))
    plot = {"kind": "bars", "columns": [], "series": [], **(table.get("plot") or {})}
    return {**plot, "columns": plot["columns"] or columns[:1]}


def rows_of(table: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(cell["row"] for cell in table["cells"]))


def headline_precision(table: dict[str, Any]) -> str:
    return table["cells"][0]["precision"]


def heading_of(table: dict[str, Any], what: str) -> str:
    """"Table 5: <what>"; a study (fidelity, precision) has no number: its title alone says what it is."""
    number = str(table["table"])
    return "\n".join(textwrap.wrap(f"Table {number}: {what}" if number.isdigit() else what, 90))


def title_of(table: dict[str, Any]) -> str:
    return heading_of(table, table["title"])


def score_plot(table: dict[str, Any], path: Path) -> bool:
    """The table's scores as its file's `plot:` says; False (nothing written) for `none` or nothing to draw."""
    kind = plot_spec(table)["kind"]
    if kind == "params":
        return params_plot(table, path)
    if kind in ("bars", "grouped_bars"):
        return bars_plot(table, path)
    return False


def bar_layout(table: dict[str, Any]) -> list[tuple[float, str, str, str]]:
    """(y position, row, the label beside it, its series) for each row, top to bottom in the table's order.
    Grouped bars: the rows of a group sit together under the group's label, one colour per series."""
    plot, rows = plot_spec(table), rows_of(table)
    if plot["kind"] != "grouped_bars":
        return [(float(index), row, row, "") for index, row in enumerate(rows)]
    groups: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        series = next(name for name in plot["series"] if row.endswith(f", {name}"))
        groups.setdefault(row.removesuffix(f", {series}"), []).append((row, series))
    width = 1.0 / (len(plot["series"]) + 1)
    layout = []
    for index, (group, members) in enumerate(groups.items()):
        for row, series in members:
            offset = (plot["series"].index(series) - (len(plot["series"]) - 1) / 2) * width
            layout.append((index + offset, row, group, series))
    return layout


def bars_plot(table: dict[str, Any], path: Path) -> bool:
    return save(bars_figure(table), path)


def params_plot(table: dict[str, Any], path: Path) -> bool:
    return save(params_figure(table), path)


def curves_plot(table: dict[str, Any], records: list[dict[str, Any]], path: Path) -> bool:
    return save(curves_figure(table, records), path)


def save(figure: Any, path: Path) -> bool:
    """Writes the figure (False, nothing written, for None: nothing to draw) and frees it."""
    if figure is None:
        return False
    figure.savefig(path, dpi=120, bbox_inches="tight")
    pyplot().close(figure)
    return True


def bars_figure(table: dict[str, Any]) -> Any | None:
    """One horizontal bar per row (labelled with the row's name) for each plotted column; see the module doc."""
    plt = pyplot()
    plot = plot_spec(table)
    precision = headline_precision(table)
    by_key = {(cell["row"], cell["column"]): cell for cell in table["cells"] if cell["precision"] == precision}
    if not any(by_key[(row, column)]["ours_mean"] is not None
               for row in rows_of(table) for column in plot["columns"] if (row, column) in by_key):
        return None
    layout = bar_layout(table)
    grouped = plot["kind"] == "grouped_bars"
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bar_height = 0.8 / (len(plot["series"]) + 1) * 1.6 if grouped else 0.7
    positions: dict[str, list[float]] = {}
    for y, _, label, _ in layout:
        positions.setdefault(label, []).append(y)
    labels = {label: sum(ys) / len(ys) for label, ys in positions.items()}  # a group's label at its bars' middle
    wrapped = {label: "\n".join(textwrap.wrap(label, 44)) for label in labels}
    lines = sum(text.count("\n") + 1 for text in wrapped.values())
    height = max(2.6, 0.32 * max(lines, len(layout)) + 1.6)
    panels = len(plot["columns"])
    figure, axes_list = plt.subplots(1, panels, figsize=(4.2 * panels + 2.8, height), sharey=True, squeeze=False)
    missing_paper = given_paper = 0
    for axes, column in zip(axes_list[0], plot["columns"]):
        cells = [(y, by_key.get((row, column)), series) for y, row, _, series in layout]
        top = max([c["ours_mean"] + (c["ours_std"] or 0) for _, c, _ in cells if c and c["ours_mean"] is not None]
                  + [c["paper"] for _, c, _ in cells if c and c["paper"] is not None] + [1.0])
        for y, cell, series in cells:
            if cell is None:
                continue
            colour = colours[plot["series"].index(series) % len(colours)] if grouped else colours[0]
            if cell["ours_mean"] is not None:
                # a spread only where more than one run (tables rendered before (n=1) carry a std of 0.0)
                several = cell.get("ours_std") is not None and len(cell.get("seeds", [])) != 1
                axes.barh(y, cell["ours_mean"], height=bar_height, color=colour,
                          xerr=cell.get("ours_std") if several else None, capsize=3, error_kw={"elinewidth": 1})
                text = one_decimal(cell["ours_mean"]) + (f" ± {one_decimal(cell['ours_std'])}" if several else "")
                # inside a long bar (the paper's stroke often sits just past its end), beside a short one
                if cell["ours_mean"] > top * 0.3:
                    axes.text(cell["ours_mean"] - (cell.get("ours_std") if several else 0) - top * 0.015, y, text,
                              va="center", ha="right", fontsize=7, color="white", fontweight="bold")
                else:
                    axes.text(cell["ours_mean"] + (cell.get("ours_std") if several else 0) + top * 0.015, y, text,
                              va="center", fontsize=7)
            else:
                why = cell_error(cell["not_run"]) if cell.get("not_run") else "not run"
                axes.text(top * 0.01, y, why, va="center", fontsize=7, color="dimgray", style="italic")
            if cell["paper"] is not None:
                axes.plot([cell["paper"]], [y], gid="paper", **PAPER_TICK)
                given_paper += 1
            else:
                missing_paper += 1
        axes.set_xlim(0, top * 1.22)
        positions = [y for y, *_ in layout]
        axes.set_ylim(max(positions) + 0.6, min(positions) - 0.6)  # the table's first row on top, as in the table
        axes.set_xlabel(metric_words(cells[0][1]["metric"], several_languages(table)) if cells[0][1] else column)
        if panels > 1:
            axes.set_title(column, fontsize=9)
        axes.grid(axis="x", alpha=0.3)
    first = axes_list[0][0]
    first.set_yticks(list(labels.values()), [wrapped[label] for label in labels], fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[index % len(colours)]) for index in range(len(plot["series"]))] \
        if grouped else [plt.Rectangle((0, 0), 1, 1, color=colours[0])]
    ours = f"ours ({table['budget']} budget)"
    names = [f"{ours}: {series}" for series in plot["series"]] if grouped else [ours]
    handles.append(plt.Line2D([], [], **PAPER_TICK))
    names.append("paper" + ("" if not missing_paper else " (no tick: no paper number)" if given_paper
                            else ": no number for any row"))
    figure.legend(handles, names, loc="lower center", ncol=len(names), fontsize=8, frameon=False)
    figure.suptitle(title_of(table), fontsize=9)
    figure.tight_layout(rect=(0, 0.06 if height > 4 else 0.1, 1, 1))
    return figure


def params_points(table: dict[str, Any], column: str) -> dict[str, list[tuple[float, float, float | None, str]]]:
    """(parameters, score, std, row) of ours per precision and of the paper, for one column."""
    cells = [cell for cell in table["cells"] if cell["column"] == column]
    points: dict[str, list[tuple[float, float, float | None, str]]] = {}
    for cell in cells:
        if cell["params"] and cell["ours_mean"] is not None:
            points.setdefault(f"ours, {cell['precision']}", []).append(
                (cell["params"], cell["ours_mean"], cell.get("ours_std"), cell["row"]))
    for cell in cells:
        x = paper_params(cell["paper_params"])
        if cell["precision"] == headline_precision(table) and cell["paper"] is not None and x:
            points.setdefault("paper", []).append((x, cell["paper"], None, cell["row"]))
    return {name: sorted(values) for name, values in points.items()}


def log_count_axis(axes: Any) -> None:
    """A log axis of parameter counts with ticks at 1, 2 and 5 of each decade, labelled 200K, 1M, 2M."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axes.set_xscale("log")
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(FuncFormatter(count_text))
    axes.xaxis.set_minor_formatter(NullFormatter())


def params_figure(table: dict[str, Any]) -> Any | None:
    """Score against parameters for size presets (the plotted column, e.g. the average); see the module doc."""
    plt = pyplot()
    column = plot_spec(table)["columns"][0]
    points = params_points(table, column)
    if sum(len(values) for values in points.values()) < 2:
        return None
    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    styles = {"paper": ("s", ":", "black")}
    paper = {row: y for _, y, _, row in points.get("paper", [])}
    ours_rows = {row for name, values in points.items() if name != "paper" for *_, row in values}
    for index, (name, values) in enumerate(sorted(points.items(), key=lambda item: item[0] == "paper")):
        marker, line, colour = styles.get(name, ("o^v"[index % 3], "-" if index == 0 else "--", f"C{index}"))
        label = f"{name} ({table['budget']} budget)" if name != "paper" else "paper"
        errors = [std or 0.0 for _, _, std, _ in values]
        axes.errorbar([p[0] for p in values], [p[1] for p in values], yerr=errors if any(errors) else None,
                      marker=marker, linestyle=line, color=colour, label=label, capsize=3)
        # each preset named once: at our first curve's point, on the side away from the paper's point (the
        # int8 curve sits on top of fp32); at the paper's point only where we have none
        for x, y, _, row in values:
            if (name == "paper" and row not in ours_rows) or (name != "paper" and index == 0):
                below = name == "paper" or paper.get(row, y - 1) > y
                axes.annotate(row, (x, y), textcoords="offset points", xytext=(5, -11 if below else 5), fontsize=7,
                              color=colour)
    axes.margins(x=0.08, y=0.1)
    log_count_axis(axes)
    axes.set_xlabel("parameters")
    cell = next(cell for cell in table["cells"] if cell["column"] == column)
    axes.set_ylabel(metric_words(cell["metric"], several_languages(table)))
    axes.set_title(title_of(table), fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    return figure


def history_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A finished record's per-epoch history: the one it carries (committed records), else its run folder's."""
    if "history" in record:
        return record["history"]
    metrics_path = Path(record.get("run_dir", "")) / "metrics.json"
    if not metrics_path.exists():
        return []
    return json.loads(metrics_path.read_text()).get("history", [])


def curve_panels(table: dict[str, Any]) -> list[tuple[list[str], dict[str, str]]]:
    """The runs behind the table as panels: (column names, run folder -> its row), one panel per distinct set
    of runs (columns read from the same runs share one: Table 5's languages; Table 7's data sets do not)."""
    panels: list[tuple[list[str], dict[str, str]]] = []
    for column in dict.fromkeys(cell["column"] for cell in table["cells"]):
        runs = {run_dir: cell["row"] for cell in table["cells"] if cell["column"] == column
                for run_dir in cell.get("run_dirs", [])}
        if not runs:
            continue
        same = next((panel for panel in panels if panel[1] == runs), None)
        if same:
            same[0].append(column)
        else:
            panels.append(([column], runs))
    # a column read from runs that other panels show already (Table 5's avg, the mean of its per-language
    # columns) adds no curve of its own: left out rather than drawn again as one panel of every run; from the
    # last panel back, against the panels kept, so every run keeps a panel
    for panel in reversed(list(panels)):
        if set(panel[1]) <= {run for other in panels if other is not panel for run in other[1]}:
            panels.remove(panel)
    return panels


def curve_language(record: dict[str, Any]) -> str:
    """The language whose eval metric a run's history holds: its `monitor_language`, else the one language it
    trained on (Table 5's per-language runs), else "avg" (the mean over the languages of a pooled run)."""
    chosen = record.get("monitor_language") or "avg"
    if chosen != "avg":
        return chosen
    languages = {key.split("/")[0] for key in (record.get("data_report") or {}) if key.endswith("/train")}
    return languages.pop() if len(languages) == 1 else "avg"


def curve_labels(rows: list[tuple[str, int]]) -> list[str]:
    """A legend label per run from its (row, seed): the row's name, with the seed where the row has several runs."""
    counts = {row: sum(other == row for other, _ in rows) for row, _ in rows}
    labels = [f"{row}, seed {seed}" if counts[row] > 1 else row for row, seed in rows]
    repeats: dict[str, int] = {}
    for index, label in enumerate(labels):  # the runs of one seed across folds: numbered
        repeats[label] = repeats.get(label, 0) + 1
        if labels.count(label) > 1:
            labels[index] = f"{label}, run {repeats[label]}"
    return labels


def curves_figure(table: dict[str, Any], records: list[dict[str, Any]]) -> Any | None:
    """The training curves' figure (None without any history); `records` the finished records to look in.
    A panel per set of runs and, within it, per data set and selection metric (the ATIS rows of the fidelity
    study select on intent accuracy, the MTOP rows on exact match: one axis would mislabel one of them)."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    by_run = {record.get("run_dir"): record for record in records if record.get("status") == "finished"}
    order = rows_of(table)
    panels: list[tuple[str, str, list[tuple[str, dict[str, Any]]]]] = []
    for columns, runs in curve_panels(table):
        found = sorted(((row, by_run[run_dir]) for run_dir, row in runs.items()
                        if run_dir in by_run and history_of(by_run[run_dir])),
                       key=lambda item: (order.index(item[0]), item[1].get("seed", 0), item[1].get("run_dir", "")))
        kinds = list(dict.fromkeys((record.get("data", ""), record["monitor"]) for _, record in found))
        for data, monitor in kinds:
            members = [(row, record) for row, record in found if (record.get("data", ""), record["monitor"]) == (data, monitor)]
            title = " / ".join(LANGUAGES.get(column, column) for column in columns) if len(kinds) == 1 else \
                f"{DATA_NAMES.get(data, data)}: selected on eval {METRIC_WORDS.get(monitor, monitor)}"
            panels.append((title, monitor, members))
    if not panels:
        return None
    entries = max(len(members) for *_, members in panels)
    # a few short legends: panels side by side; long ones: panels stacked, each legend beside its axes
    stacked = len(panels) > 2 or entries > 6
    if stacked:
        heights = [max(3.2, 0.34 * len(members)) for *_, members in panels]
        figure, axes_grid = plt.subplots(len(panels), 1, figsize=(11, sum(heights) + 0.6), squeeze=False,
                                         gridspec_kw={"height_ratios": heights})
        axes_list = [axes for (axes,) in axes_grid]
    else:
        figure, axes_grid = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
        axes_list = list(axes_grid[0])
    palette = plt.get_cmap("tab20").colors
    colours = plt.get_cmap("tab10").colors if len(order) <= 10 else palette[0::2] + palette[1::2]
    for axes, (title, monitor, members) in zip(axes_list, panels):
        labels = curve_labels([(row, record.get("seed", 0)) for row, record in members])
        runs_of_row: dict[str, int] = {}
        for label, (row, record) in zip(labels, members):
            # a row's colour; its seeds (or, past the palette, the rows sharing a colour) differ by their dash
            runs_of_row[row] = runs_of_row.get(row, -1) + 1
            key = f"eval_{monitor}"
            points = [(entry["epoch"], entry[key]) for entry in history_of(record) if key in entry]
            index = order.index(row)
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="." if len(points) < 30 else None,
                      color=colours[index % len(colours)],
                      linestyle=("-", "--", ":", "-.")[(index // len(colours) + runs_of_row[row]) % 4],
                      label="\n".join(textwrap.wrap(label, 60)))
        languages = {curve_language(record) for _, record in members}
        language = f"/{languages.pop() if len(languages) == 1 else 'avg'}/" if several_languages(table) else "//"
        axes.set_ylabel(metric_words(f"eval{language}{monitor}", several_languages(table)))
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if len(panels) > 1:
            axes.set_title(title, fontsize=9)
        if stacked:  # beside the axes, not over the curves
            axes.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        else:
            axes.legend(fontsize=7)
    what = "training curves (the selection metric on the eval split, per epoch)"
    figure.suptitle(heading_of(table, what if str(table["table"]).isdigit() else f"{table['table']}: {what}"), fontsize=9)
    # stacked panels: the heading keeps its own strip above the first panel's title (tight_layout alone let
    # them overlap in a tall figure)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.3 / figure.get_figheight()) if stacked else None)
    return figure
