"""`make run`: the full MTOP English shipped in the package, its command, and the table beside the paper (issue 17).
No training here: the data is loaded once, the command composed, the table rendered from a built record."""

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from rich.console import Console

from helpers import compose_config
from pnlp_bench.core.compose import default_config
from pnlp_bench.core.paths import asset
from pnlp_bench.core.identity import read_view
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.paper_reference import comparison_table, paper_numbers, reference_for

ROOT = Path(__file__).resolve().parents[1]
COUNTS = {"en/train": 15667, "en/eval": 2235, "en/test": 4386}


def make_run_overrides() -> list[str]:
    """The overrides the Makefile's run target passes to `bench run`."""
    recipe = re.search(r"^run:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)[1]
    return recipe.split("bench run", 1)[1].split()


def test_the_shipped_english_splits_load_with_the_release_counts():
    loaded = load_data(DataConfig(name="mtop", root=str(asset("mtop_en")), languages=["en"]))
    assert {key: loaded.report[key] for key in COUNTS} == COUNTS


def test_the_shipped_splits_are_the_shared_copy_data_mtop_reads(shared_data):
    stats = json.loads((shared_data / "mtop" / "full" / "stats.json").read_text())
    assert {key: stats[key]["examples"] for key in COUNTS} == COUNTS
    for split in ("train", "eval", "test"):  # the very files data=mtop reads from the shared copy
        shipped = asset("mtop_en") / "en" / f"{split}.txt.gz"
        assert shipped.read_bytes() == (shared_data / "mtop" / "full" / "en" / f"{split}.txt.gz").read_bytes()


def test_the_package_data_holds_the_splits_and_their_licence():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["pnlp_bench"]
    folder = ROOT / "pnlp_bench" / "assets" / "mtop_en"
    shipped = [path.relative_to(ROOT / "pnlp_bench").as_posix() for path in folder.rglob("*") if path.is_file()]
    assert sorted(shipped) == ["assets/mtop_en/README.md", *(f"assets/mtop_en/en/{s}.txt.gz" for s in ("eval", "test", "train"))]
    assert all(any(fnmatch(name, pattern) for pattern in patterns) for name in shipped)
    readme = (folder / "README.md").read_text()
    assert "CC BY-SA 4.0" in readme and "arXiv:2008.09335" in readme and "nhhoang96/CoF-CoT" in readme
    assert sum(path.stat().st_size for path in (folder / "en").iterdir()) < 2_000_000


def test_make_run_composes_the_paper_cell_at_the_plateau_budget():
    overrides = make_run_overrides()
    assert overrides == ["data=mtop_en", "trainer=plateau", "quantize.int8=true"]
    cfg = compose_config(overrides)
    assert Path(cfg.data.root) == asset("mtop_en") and list(cfg.data.languages) == ["en"]
    assert cfg.trainer.epochs == 30 and cfg.quantize.int8 and cfg.backbone.name == "mixer"
    reference = reference_for(read_view(cfg), "mtop_en", default_config())
    assert [(n.split, n.metric, n.value) for n in reference] == [("eval", "exact_match", 80.8), ("test", "exact_match", 81.8)]
    # the same files and config under data=mtop are the same cell; the sample, a subset or another projection are not
    assert reference_for(read_view(compose_config(["data=mtop", "data.languages=[en]"])), "mtop", default_config())
    assert not reference_for(read_view(compose_config(["trainer=quick"])), "mtop_sample", default_config())
    assert not reference_for(read_view(compose_config(["data=mtop_en", "data.train_limit=100"])), "mtop_en", default_config())
    assert not reference_for(read_view(compose_config(["data=mtop_en", "projection=tsp"])), "mtop_en", default_config())
    assert not reference_for(read_view(compose_config(["data=mtop_en", "model=mixer_xs"])), "mtop_en", default_config())


def test_the_paper_numbers_come_from_the_table_files():
    numbers = {(n.split, n.metric): n for n in paper_numbers()}
    assert numbers["eval", "exact_match"].value == 80.8 and "Table 1" in numbers["eval", "exact_match"].where
    assert numbers["test", "exact_match"].value == 81.8 and "8-bit" in numbers["test", "exact_match"].where


def test_the_comparison_table_shows_ours_the_paper_and_the_difference():
    def scores(exact_match: float) -> dict:
        return {"en": {"exact_match": exact_match, "intent_accuracy": 92.25, "slot_f1": 80.5, "examples": 10}}

    record = {
        "budget": "30 epochs, reduced budget, not the paper protocol", "wall_seconds": 552.0, "best_epoch": 29,
        "provenance": {"device": "CPU: Intel(R) Xeon(R) Processor (2 threads)"},
        "metrics": {"eval": scores(64.3), "test": scores(65.9)},
        "metrics_int8": {"eval": scores(64.2), "test": scores(65.8)},
    }
    console = Console(width=200, record=True)
    console.print(comparison_table(record, paper_numbers()))
    text = console.export_text()
    assert re.search(r"eval\s+│\s+ours fp32\s+│\s+64\.3\s+│\s+80\.8\s+│\s+-16\.5\s+│\s+92\.2\s+│\s+80\.5", text), text
    assert re.search(r"test\s+│\s+ours int8\s+│\s+65\.8\s+│\s+81\.8\s+│\s+-16\.0", text), text
    caption = " ".join(text.split())  # the caption wraps at the table's width
    assert "9.2 min on CPU: Intel(R) Xeon(R) Processor (2 threads)" in caption and "30 epochs, reduced budget" in caption
    assert "results/fidelity.md" in caption and "MinHash row [text]" in caption and "8-bit [T]" in caption
