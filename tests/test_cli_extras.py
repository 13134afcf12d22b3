"""Small things users rely on: `bench --version`, shell completion in a real bash, `bench run --help` with the
groups described, `bench tables --budget` refusing a budget no table has, wandb's run id and group."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from pnlp_bench import __version__
from pnlp_bench.core.compose import cell_identity, config_identity
from pnlp_bench.core.loggers import LOGGERS
from tests.helpers import compose_config, group_options

ROOT = Path(__file__).resolve().parents[1]


def bench(*args: str, env_extra: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "pnlp_bench.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_version_names_the_package_version():
    done = bench("--version")
    assert done.returncode == 0 and done.stdout.strip().startswith(f"pnlp-bench {__version__} ")


def test_tables_refuses_a_budget_no_table_has():
    done = bench("tables", "--budget", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: bench tables --budget 'nope': no table has that budget; valid: auto, cpu, cpu_1m, cpu_1x, cpu_3x, paper, paper-cpu, smoke"]


def test_run_help_describes_every_group_and_lists_its_options():
    done = bench("run", "--help")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("bench run: ") and "is powered by Hydra" not in text
    for group in ("projection", "backbone", "size", "data", "trainer", "model", "routing", "arch"):
        line = next(line for line in text.splitlines() if line.startswith(f"{group}: "))
        assert "not described" not in line, line
        assert ", ".join(group_options(group)) in text
    assert "not described in conf/README.md" not in text


@pytest.fixture(scope="module")
def shell_with_completion(tmp_path_factory) -> Path:
    """A folder with a `bench` on it that runs this checkout, as an installed entry point would."""
    if shutil.which("bash") is None:
        pytest.skip("no bash here")
    folder = tmp_path_factory.mktemp("bin")
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    (folder / "bench").write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec "{sys.executable}" -m pnlp_bench.cli "$@"\n')
    (folder / "bench").chmod(0o755)
    return folder


def completions(folder: Path, line: str) -> list[str]:
    """What <TAB> offers at the end of `line` in a bash that ran `eval "$(bench completion bash)"`."""
    script = ('eval "$(bench completion bash)"; read -a COMP_WORDS <<< "$LINE"; '
              '[[ "$LINE" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMP_LINE="$LINE"; '
              '_bench_complete; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "LINE": line}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.split("\n") if word]


def test_bash_completion_of_commands_overrides_tables_and_flags(shell_with_completion):
    assert completions(shell_with_completion, "bench ta") == ["table ", "tables "]
    assert completions(shell_with_completion, "bench run model=mixer_x") == ["model=mixer_xlarge", "model=mixer_xs"]
    assert "trainer.epochs=" in completions(shell_with_completion, "bench run trainer.ep")
    assert completions(shell_with_completion, "bench pretrain arch=") == ["arch=gated", "arch=stack"]
    assert "6 " in completions(shell_with_completion, "bench table ")
    assert completions(shell_with_completion, "bench reproduce --dr") == ["--dry-run "]
    assert completions(shell_with_completion, "bench predict --wo") == ["--words "]


def test_completion_script_registers_bench_alone():
    done = bench("completion", "bash")
    assert done.returncode == 0
    assert done.stdout.rstrip().splitlines()[-1] == "complete -o nospace -o default -F _bench_complete bench"
    assert "bashcompinit" in bench("completion", "zsh").stdout
    assert bench("completion", "fish").returncode == 2


def test_wandb_run_id_is_the_identity_and_seeds_share_the_cell_group(monkeypatch, tmp_path):
    calls = []
    fake = types.SimpleNamespace(init=lambda **kwargs: calls.append(kwargs) or types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    seeds = [compose_config(["model=mixer_xs", f"seed={seed}"]) for seed in (0, 1)]
    assert cell_identity(seeds[0]) == cell_identity(seeds[1])
    assert config_identity(seeds[0]) != config_identity(seeds[1])
    assert cell_identity(compose_config(["model=mixer_base"])) != cell_identity(seeds[0])
    for group in (None, "mine"):
        LOGGERS.build("wandb", {"mode": "disabled", "group": group}, "logger", run_config={}, run_dir=tmp_path,
                      run_name="mixer_xs-abc", run_id="abc-0.1.0", group="mtop/mixer_xs-cell")
    assert [call["id"] for call in calls] == ["abc-0.1.0", "abc-0.1.0"]
    assert {call["resume"] for call in calls} == {"allow"}
    assert [call["group"] for call in calls] == ["mtop/mixer_xs-cell", "mine"]  # a group the user names wins
