"""`bench completion bash|zsh`: shell completion for `bench` and its subcommands.

Hydra's own script (`-sc install=bash`) registers the program name it is started as, and `bench run` starts
Hydra as "bench run": the script it prints completes a command called `bench run`, which no shell has. Here one
script completes `bench`: the subcommand first, then `bench run`/`bench pretrain` overrides from Hydra's own
completion (groups, options, config keys; asked with the line as Hydra expects it, without the subcommand),
table names for `bench table`, and every subcommand's flags as its argparse parser lists them. Paths fall back
to the shell's file completion."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Callable, Sequence

HYDRA_COMMANDS = {"run", "pretrain"}
SHELLS = ("bash", "zsh")

BASH_SCRIPT = """# bench's shell completion: eval "$(bench completion bash)" (for example in ~/.bashrc)
_bench_complete() {
    local IFS=$'\\n'
    COMPREPLY=( $(bench __complete "$COMP_CWORD" "${COMP_WORDS[@]}" 2>/dev/null) )
}
# `model=mixer_base` and `trainer.epochs=5` are one word to complete, as in Hydra's own script
COMP_WORDBREAKS=${COMP_WORDBREAKS//=}
COMP_WORDBREAKS=${COMP_WORDBREAKS//:}
complete -o nospace -o default -F _bench_complete bench
"""

ZSH_PREAMBLE = """# bench's shell completion: eval "$(bench completion zsh)" (for example in ~/.zshrc)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
"""


def script(shell: str) -> str:
    from pnlp_bench.core.registry import ConfigError

    if shell not in SHELLS:
        raise ConfigError(f"bench completion: no script for shell {shell!r}; available: {', '.join(SHELLS)}")
    return BASH_SCRIPT if shell == "bash" else ZSH_PREAMBLE + BASH_SCRIPT


def main(argv: Sequence[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="bench completion", description="Print a shell completion script for bench.")
    parser.add_argument("shell", choices=SHELLS)
    args = parser.parse_args(list(argv))
    print(script(args.shell), end="")
    return 0


def hydra_candidates(words: list[str], current: str) -> list[str]:
    """Hydra's completion of `bench run <words…> <current>`: groups, options and keys."""
    from pnlp_bench.commands.run import main as run_main

    line = " ".join(["bench", *words, current])  # Hydra strips the first word, the program's name
    previous = os.environ.get("COMP_LINE"), sys.argv
    os.environ["COMP_LINE"] = line
    sys.argv = ["bench", "-sc", "query=bash"]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.suppress(SystemExit):
            run_main()
    finally:
        sys.argv = previous[1]
        if previous[0] is None:
            os.environ.pop("COMP_LINE", None)
        else:
            os.environ["COMP_LINE"] = previous[0]
    return printed.getvalue().split()


def flags_of(command: str, bench: Callable[[list[str]], None]) -> list[str]:
    """The long flags a subcommand's parser lists in its --help (the lines of its options section)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        bench([command, "--help"])
    return sorted(set(re.findall(r"^\s+(?:-\w\S*, )?(--[a-z][\w-]*)", printed.getvalue(), re.MULTILINE)))


def candidates(words: list[str], current: str, commands: Sequence[str], bench: Callable[[list[str]], None]) -> list[str]:
    """Completions of the word being typed, given the words before it (without `bench`); `bench` runs a
    command line (the CLI's main), to read a subcommand's --help."""
    if not words:
        return [f"{command} " for command in commands if command.startswith(current)]
    command = words[0]
    if command in HYDRA_COMMANDS:
        return [word for word in hydra_candidates(words[1:], current) if word.startswith(current)]
    if command == "completion":
        return [f"{shell} " for shell in SHELLS if shell.startswith(current)]
    if current.startswith("-"):
        return [f"{flag} " for flag in flags_of(command, bench) if flag.startswith(current)]
    if command == "table" and len(words) == 1:
        from pnlp_bench.commands.table import spec_files, table_name

        return [f"{name} " for name in map(table_name, spec_files()) if name.startswith(current)]
    return []  # paths and free text: the shell's own file completion (-o default)


def complete(argv: Sequence[str], commands: Sequence[str], bench: Callable[[list[str]], None]) -> int:
    """`bench __complete CWORD bench WORDS…` (bash's COMP_CWORD and COMP_WORDS): one candidate per line."""
    if not argv or not argv[0].isdigit():
        return 2
    index, words = int(argv[0]), list(argv[2:])  # argv[1] is `bench` itself
    current = words[index - 1] if 0 < index <= len(words) else ""
    for candidate in candidates(words[: max(index - 1, 0)], current, commands, bench):
        print(candidate)
    return 0
