"""One run identity for the run folder, the results store and the tables.

A run is what its resolved config changes from the defaults (`bench run` with no overrides), less the keys
that change where, how fast or how loudly it runs (`IGNORED`) and the nodes its family does not read
(`UNREAD_BY_FAMILY`): the identity hashes that delta (the idea of dora's signatures). So `bench run` and
`bench run seed=0` are one run, in one folder under one store key, and an option added later leaves every
finished cell's identity as it was when its default does what the code did before: a key a config lacks (a
`config.yaml` written before the key existed) counts as its default. Only an option whose default differs
from the old behaviour needs a line in VALUES_BEFORE_THE_KEY, so that older records keep their identity.

A change of a default value changes what the runs that rely on it compute: bump the package version then
(`code_version`), which every record keys on beside this hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Where, how fast or how loudly a run happens, not what it computes.
IGNORED = (
    "quiet", "resume", "logger", "output_root", "data.root",
    "trainer.device", "trainer.num_threads", "trainer.eval_batch_size", "trainer.eval_max_positions",
    "trainer.resident_data", "trainer.compile", "trainer.host_allocator", "backbone.padding_aware",
)

# Keys added after runs were recorded, with the value that reproduces what the code did before the key
# existed. A config that lacks one (a `config.yaml` written then) is read with that value, never with
# today's default: a run from before `data.head_options.decode` decoded by argmax, whatever the default is
# now. New configs hold every key, so this only keeps old records under their true identity.
VALUES_BEFORE_THE_KEY: dict[str, Any] = {
    "init": None,
    "quantize.int8": False,
    "quantize.mode": "simulated",
    "data.eval_limit": None,
    "data.test_limit": None,
    "bottleneck.word_dropout": 0.0,
    "projection.init_std": 1.0,
    "data.head_options.decode": "argmax",
    "data.monitor_language": None,
}

# Keys that act only beside a sibling key: left out while that sibling is null, so they change the identity of
# the runs they act on and of no other (data.subset_seed draws data.train_limit's subset).
DEPENDENT_KEYS: dict[str, str] = {"data.subset_seed": "train_limit"}

# Keys renamed since runs were recorded: a config that has the old name and not the new reads as the new,
# so older records keep their identity: BiGS's data.dev_limit is now data.eval_limit, as in pNLP-Mixer, and
# pNLP-Mixer's sequence length S, data.max_words, is data.max_length, as in BiGS (words there, tokens here).
RENAMED_KEYS: dict[str, str] = {"data.dev_limit": "data.eval_limit", "data.max_words": "data.max_length"}

# Keys that name what a run computes only when set: null adds nothing to the identity, whatever the defaults say.
# `data.subset` names a part of a data set shipped in the package (the MTOP sample, `bench run`'s default data):
# its runs differ from the full data's, which `data.root` cannot tell (it is ignored, being where the data is),
# while a run on the full data stays what it was before the key, though the default data is the sample.
# `backbone.query_key_initializer_range` and `backbone.relative_attention_*` (BiGS attention routings) are
# null for BERT's init and BERT's absolute positions alone, what every run before the keys used.
COUNTED_WHEN_SET = (
    "data.subset",
    "backbone.query_key_initializer_range",
    "backbone.relative_attention_buckets",
    "backbone.relative_attention_init_slope",
)

FAMILIES = ("mixer", "bigs")

# Nodes of the shared config a family never reads (their interpolations may not even resolve there).
UNREAD_BY_FAMILY = {
    "mixer": (),
    "bigs": ("projection", "bottleneck", "size", "quantize"),
}


def family_of(cfg: DictConfig | dict[str, Any]) -> str:
    """The config's model family (its `family` key; configs written before the key: from the backbone)."""
    family = cfg.get("family")
    if family:
        return str(family)
    backbone = cfg.get("backbone") or {}
    return "bigs" if backbone.get("name") == "bigs" else "mixer"


def read_view(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without the nodes its family does not read."""
    unread = UNREAD_BY_FAMILY.get(family_of(cfg), ())
    task = [key for key in cfg if key not in unread and key != "hydra"]
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, task), resolve=True)  # type: ignore[return-value]


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaves of nested mappings; lists and empty mappings are leaves."""
    if isinstance(node, dict) and node:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def _parent(config: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    """The mapping that holds `dotted`'s last part (None where a part on the way is missing), and that part."""
    *parents, leaf = dotted.split(".")
    node: Any = config
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def with_renamed_keys(resolved: dict[str, Any]) -> dict[str, Any]:
    """A copy of `resolved` with RENAMED_KEYS under their new names: what rebuilding an older run's model needs."""
    import copy

    renamed = copy.deepcopy(resolved)
    for old_name, new_name in RENAMED_KEYS.items():
        (old_node, old_leaf), (new_node, new_leaf) = _parent(renamed, old_name), _parent(renamed, new_name)
        if old_node is not None and old_leaf in old_node and new_node is not None and new_leaf not in new_node:
            new_node[new_leaf] = old_node.pop(old_leaf)
    return renamed


def with_keys_of_then(resolved: dict[str, Any]) -> dict[str, Any]:
    """A copy of `resolved` read as today's keys: RENAMED_KEYS under their new names, and each key of
    VALUES_BEFORE_THE_KEY it lacks set to that value (where its parent exists)."""
    filled = with_renamed_keys(resolved)
    filled.setdefault("family", family_of(resolved))  # configs before the key: BiGS runs were told by their backbone
    data = filled.get("data")
    if filled["family"] == "bigs" and isinstance(data, dict) and "subset_seed" not in data:
        data["subset_seed"] = "first rows"  # BiGS's train_limit took the first rows before the subset was drawn
    for dotted, value in VALUES_BEFORE_THE_KEY.items():
        node, leaf = _parent(filled, dotted)
        if node is not None and leaf not in node:
            node[leaf] = value
    return filled


def without_idle_keys(resolved: dict[str, Any]) -> dict[str, Any]:
    """`resolved` without the DEPENDENT_KEYS whose sibling is null (they do nothing there), nor the
    COUNTED_WHEN_SET keys that are null."""
    for dotted, sibling in DEPENDENT_KEYS.items():
        node, leaf = _parent(resolved, dotted)
        if node is not None and leaf in node and node.get(sibling) is None:
            del node[leaf]
    for dotted in COUNTED_WHEN_SET:
        node, leaf = _parent(resolved, dotted)
        if node is not None and leaf in node and node[leaf] is None:
            del node[leaf]
    return resolved


def without_counted_when_set(defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults without the COUNTED_WHEN_SET keys: a run that sets one differs by it, one that does not, not."""
    for dotted in COUNTED_WHEN_SET:
        node, leaf = _parent(defaults, dotted)
        if node is not None:
            node.pop(leaf, None)
    return defaults


def _ignored(key: str) -> bool:
    return any(key == name or key.startswith(name + ".") for name in IGNORED)


def _canonical(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def delta(resolved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The leaves of `resolved` that differ from `defaults` (or that the defaults lack), ignored keys left out."""
    base = {key: _canonical(value) for key, value in flatten(defaults).items()}
    return {
        key: value
        for key, value in ((key, _canonical(value)) for key, value in flatten(resolved).items())
        if not _ignored(key) and (key not in base or base[key] != value)
    }


def changed_keys(resolved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The dotted keys (and values) of a resolved config that its identity hashes: what it changes from
    `defaults` among the keys its family reads, ignored ones left out (`bench runs` shows them)."""
    unread = UNREAD_BY_FAMILY.get(family_of(resolved), ())
    read = {key: value for key, value in resolved.items() if key not in unread and key != "hydra"}
    return delta(without_idle_keys(with_keys_of_then(read)),
                 without_counted_when_set(without_idle_keys(with_keys_of_then(defaults))))


def identity_of(resolved: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The identity of a resolved config (a run folder's `config.yaml`, a composed cell) against the
    resolved defaults (`pnlp_bench.core.compose.default_config()`; `config_identity` there does both)."""
    changed = changed_keys(resolved, defaults)
    return hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:16]
