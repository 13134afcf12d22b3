"""The config groups of `bench run` (conf/README.md). Hydra imports this package to read them, so the
defaults every YAML option builds on, owned by the dataclasses, are stored here first (core/schema.py), and
the resolver of `bench run --help`'s group list is registered (config.yaml: hydra.help)."""

from omegaconf import OmegaConf

from pnlp_bench.bigs import schemas as bigs_schemas
from pnlp_bench.core import schema
from pnlp_bench.mixer import schemas as mixer_schemas

schema.store(schema.core_nodes(), mixer_schemas.nodes(), bigs_schemas.nodes())


def groups_help() -> str:
    """`bench run --help`'s list of groups: what each is (the table in conf/README.md) and its options (the
    YAML files of its folder), in the README's order."""
    import re
    from pathlib import Path

    folder = Path(__file__).parent
    described: dict[str, str] = {}
    for row in re.findall(r"^\|.*\|$", (folder / "README.md").read_text(), re.MULTILINE):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for name in re.findall(r"`([a-z_]+)/`", cells[0]) if len(cells) == 4 else ():
            described[name] = cells[3]
    groups = sorted((path.name for path in folder.iterdir() if path.is_dir() and any(path.glob("*.yaml"))),
                    key=lambda name: (list(described).index(name) if name in described else len(described), name))
    lines = []
    for name in groups:
        lines.append(f"{name}: {described.get(name, '(not described in conf/README.md)')}")
        lines.append(f"    {', '.join(sorted(path.stem for path in (folder / name).glob('*.yaml')))}")
    return "\n".join(lines)


OmegaConf.register_new_resolver("bench_groups_help", groups_help, replace=True)
