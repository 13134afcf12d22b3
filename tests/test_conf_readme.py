"""conf/README.md maps every config group and option to its code: a new group or option must be added there."""

from pathlib import Path

import re

import pnlp_bench

CONF = Path(pnlp_bench.__file__).parent / "conf"


def names_in(row: str) -> set[str]:
    """The option names a row spells, `mixer_{xs,base}` expanded to mixer_xs, mixer_base."""
    names = set()
    for piece in row.split("`")[1::2]:
        braces = re.fullmatch(r"(.*)\{(.*)\}(.*)", piece)
        names |= {f"{braces[1]}{middle}{braces[3]}" for middle in braces[2].split(",")} if braces else {piece}
    return names


def test_every_group_and_option_is_in_the_conf_readme():
    readme = (CONF / "README.md").read_text()
    rows = {line.split("|")[1].strip().strip("`"): line for line in readme.splitlines() if line.startswith("| `")}
    groups = sorted(path.name for path in CONF.iterdir() if path.is_dir() and not path.name.startswith("_"))
    for group in groups:
        # arch/ and routing/ share one row
        row = next((line for key, line in rows.items() if f"{group}/" in key), None)
        assert row is not None, f"conf/README.md has no row for the group {group}/"
        for option in sorted(path.stem for path in (CONF / group).glob("*.yaml")):
            assert option in names_in(row), f"conf/README.md's row for {group}/ does not name the option {option}"


def test_every_file_the_conf_readme_names_exists():
    readme = (CONF / "README.md").read_text()
    root = CONF.parent.parent
    for piece in readme.split("`"):
        if piece.startswith("pnlp_bench/") and piece.endswith(".py") and "<" not in piece:
            assert (root / piece).is_file(), f"conf/README.md names {piece}, which does not exist"


def test_every_repository_file_a_comment_names_exists():
    """Comments and config notes that point at a file of the repository (pnlp_bench/…, tests/…, tools/…,
    experiments/…, results/…) point at one that exists."""
    root = CONF.parent.parent
    pattern = re.compile(r"\b((?:pnlp_bench|tests|tools|experiments)/[\w/.-]+\.(?:py|yaml|md|sh))\b")
    missing = []
    for path in [*root.glob("pnlp_bench/**/*.py"), *root.glob("pnlp_bench/**/*.yaml"), *root.glob("experiments/*.yaml"),
                 *root.glob("tools/*")]:
        for name in pattern.findall(path.read_text(errors="ignore")):
            if "<" not in name and "N." not in name and not (root / name).exists():
                missing.append(f"{path.relative_to(root)} names {name}")
    assert not missing, "\n".join(missing)
