"""One run identity: the run folder, the store and the tables agree, and spelling a default changes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from rich.console import Console

from pnlp_bench.commands import table as tables
from pnlp_bench.core import store
from pnlp_bench.core.compose import default_config
from pnlp_bench.core.compose import config_identity, resolved_identity
from pnlp_bench.core.identity import delta, identity_of
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.commands.run import adopt_legacy_run_dir, check_family


def run_folder(overrides: list[str]) -> str:
    """The folder `bench run <overrides>` trains in, resolved as Hydra resolves it for the job."""
    with initialize_config_module(config_module="pnlp_bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*overrides, "output_root=/tmp/o"], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        try:
            return str(OmegaConf.select(cfg, "hydra.run.dir"))
        finally:
            HydraConfig.instance().cfg = None


@pytest.mark.parametrize("spelled", [["seed=0"], ["model=mixer_base", "seed=0", "trainer.epochs=80"],
                                     ["quiet=true", "trainer.device=cpu", "resume=false"]])
def test_a_default_spelled_out_is_the_same_run(spelled):
    assert run_folder(spelled) == run_folder([])
    assert tables.cell_identity(spelled) == tables.cell_identity([])


@pytest.mark.parametrize("changed", [["seed=1"], ["trainer.lr=1e-3"], ["model=mixer_xs"], ["data=mtop", "data.languages=[en]"]])
def test_a_change_is_another_run_and_the_folder_carries_the_stores_key(changed):
    assert run_folder(changed) != run_folder([])
    key, _ = tables.cell_identity(changed)
    assert run_folder(changed).endswith("-" + key)


def test_bigs_runs_share_the_rule_and_ignore_the_pnlp_nodes():
    key, _ = tables.cell_identity(["model=bigs_tiny"])
    assert run_folder(["model=bigs_tiny"]).endswith("-" + key)
    assert key != tables.cell_identity(["model=bigs_tiny", "arch=stack"])[0]


def test_an_option_added_at_its_default_leaves_identities_alone():
    defaults = default_config()
    old = {**defaults, "seed": 3}
    assert identity_of({**old, "new_option": 1}, {**defaults, "new_option": 1}) == identity_of(old, defaults)
    assert identity_of(old, defaults) != identity_of({**old, "new_option": 2}, {**defaults, "new_option": 1})
    # a config written before a key existed reads as its default (the run folder's old config.yaml)
    del old["trainer"]["host_allocator"], old["trainer"]["lr"]
    assert delta(old, defaults) == {"seed": 3}


def test_a_bigs_config_from_before_the_family_key_keeps_its_identity():
    resolved = OmegaConf.to_container(compose_with(["model=bigs_tiny"]), resolve=True)
    before = {key: value for key, value in resolved.items() if key != "family"}
    assert resolved_identity(before) == resolved_identity(resolved) != resolved_identity({**resolved, "seed": 5})


def test_a_renamed_key_keeps_older_records_under_their_identity():
    resolved = OmegaConf.to_container(compose_with(["model=bigs_tiny", "data.eval_limit=20"]), resolve=True)
    before = {**resolved, "data": {**{k: v for k, v in resolved["data"].items() if k != "eval_limit"}, "dev_limit": 20}}
    assert resolved_identity(before) == resolved_identity(resolved)
    assert resolved_identity(resolved) != resolved_identity({**resolved, "data": {**resolved["data"], "eval_limit": 21}})
    mixer = OmegaConf.to_container(compose_with(["data=imdb"]), resolve=True)  # S = 1,024 words
    older = {**mixer, "data": {**{k: v for k, v in mixer["data"].items() if k != "max_length"}, "max_words": 1024}}
    assert resolved_identity(older) == resolved_identity(mixer) != resolved_identity(OmegaConf.to_container(compose_with([]), resolve=True))


def test_the_store_key_is_the_identity():
    cfg = compose_with(["seed=2"])
    assert store.config_hash(OmegaConf.to_container(cfg, resolve=True)) == config_identity(cfg)


def compose_with(overrides):
    from pnlp_bench.core.compose import compose as bench_compose

    return bench_compose(overrides)


def test_family_names_the_pipeline_and_refuses_a_mismatch():
    assert check_family(compose_with([])) == "mixer"
    assert check_family(compose_with(["model=bigs_tiny"])) == "bigs"
    with pytest.raises(ConfigError, match="family=bigs does not run backbone=mixer"):
        check_family(compose_with(["family=bigs"]))
    cfg = compose_with([])
    cfg.family = "gpt"
    with pytest.raises(ConfigError, match="family must be one of mixer, bigs"):
        check_family(cfg)


def test_an_unfinished_run_of_the_old_folder_naming_goes_on_in_the_new_folder(tmp_path: Path):
    import hashlib

    overrides = "data=mtop,model=mixer_base,projection=tsp"
    legacy = tmp_path / f"mixer_base-{hashlib.sha256(overrides.encode()).hexdigest()[:8]}"
    (legacy / ".hydra").mkdir(parents=True)
    for name in ("best.pt", "config.yaml"):
        (legacy / name).write_text(name)
    old_identity = {"config_hash": "old-rule-hash", "code_version": store.code_version()}
    torch.save({"epoch": 3, "identity": old_identity}, legacy / "last.pt")
    new = tmp_path / "mixer_base-0123456789abcdef"
    (new / ".hydra").mkdir(parents=True)
    today = {"config_hash": "0123456789abcdef", "code_version": store.code_version()}
    adopt_legacy_run_dir(new, overrides, Console(quiet=True), today)
    moved = torch.load(new / "last.pt", weights_only=True)
    assert moved["epoch"] == 3 and moved["identity"] == today and (new / "best.pt").is_file()
    assert not (legacy / "last.pt").exists() and "goes on in" in (legacy / "MOVED").read_text()
    # nothing happens without an unfinished legacy run, or when the new folder has its own checkpoint
    other = tmp_path / "mixer_base-fedcba9876543210"
    other.mkdir()
    adopt_legacy_run_dir(other, overrides, Console(quiet=True))
    assert list(other.iterdir()) == []


def test_the_shipped_sample_is_never_a_full_data_cell():
    """`bench run`'s default data is the 2,000-sentence MTOP sample; data.root is not part of an identity, so
    the sample says `data.subset`: its runs differ from the full English data's, whose identity is the same
    from the shared copy and from the copy shipped in the package (data=mtop_en)."""
    from pnlp_bench.core.compose import compose, config_identity

    full = config_identity(compose(["data=mtop", "data.languages=[en]", "trainer=default"]))
    assert config_identity(compose(["data=mtop_en", "trainer=default"])) == full
    sample = config_identity(compose(["trainer=default"]))
    assert sample == config_identity(compose(["data=mtop_sample", "trainer=default", "seed=0"]))
    assert sample != full
    # a key left null adds nothing, so a full-data run keeps the identity it had before the key existed
    assert config_identity(compose(["data=mtop", "data.languages=[en]", "trainer=default", "data.subset=null"])) == full


def test_planning_keeps_identities_across_processes_under_the_config_trees_fingerprint(tmp_path, monkeypatch):
    """`bench tables` plans hundreds of cells, a Hydra compose each: the identities are kept in the cache
    folder under a fingerprint of the config tree and the code that composes, so a second process composes
    nothing, a damaged cache file is rebuilt, and a changed config file is another fingerprint."""
    from pnlp_bench.core import compose as composing

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    overrides = ("model=mixer_base", "size.num_layers=4", "seed=1")
    fresh = (config_identity(composing.compose(list(overrides))), store.code_version())

    def new_process() -> None:
        tables.composed_facts.cache_clear()
        tables.kept_facts.cache_clear()

    new_process()
    assert tables.composed_facts(overrides) == (fresh, 80)  # composed, and kept
    [kept] = (tmp_path / "identities").glob("*.json")
    assert kept.name == f"{composing.compose_fingerprint()}.json"
    new_process()
    monkeypatch.setattr(tables, "compose", lambda _: pytest.fail("composed again"))
    assert tables.composed_facts(overrides) == (fresh, 80) and tables.cached_identity(overrides) == fresh
    kept.write_text('{"truncated": [')  # damaged (a kill mid-write cannot do it; a disk can): composed again
    monkeypatch.undo()
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    new_process()
    assert tables.composed_facts(overrides) == (fresh, 80)
    # a config file changed: another fingerprint, so nothing kept under the old one is read
    conf = tmp_path / "package"
    shutil.copytree(Path(composing.__file__).resolve().parents[1], conf / "pnlp_bench",
                    ignore=shutil.ignore_patterns("__pycache__", "assets"))
    before = composing.compose_fingerprint()
    monkeypatch.setattr("pnlp_bench.__file__", str(conf / "pnlp_bench" / "__init__.py"))
    try:
        composing.compose_fingerprint.cache_clear()
        moved = composing.compose_fingerprint()  # the same files elsewhere: the path is part of it
        size = conf / "pnlp_bench" / "conf" / "size" / "base.yaml"
        size.write_text(size.read_text() + "\n# changed\n")
        composing.compose_fingerprint.cache_clear()
        assert len({before, moved, composing.compose_fingerprint()}) == 3
    finally:
        composing.compose_fingerprint.cache_clear()  # the next test fingerprints the real package again
        new_process()
