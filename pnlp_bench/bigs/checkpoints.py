"""Starting a BiGS run from a pretrained encoder: `init=<run:<config hash> | run folder | checkpoint file | hf:<repo>>`.

* `run:<config hash>`: the finished run of that identity (the `config_hash` of its record, the hash the
  results store and `bench table` use) with this code version, looked up in the results store under the
  output root. The fine-tune names its pretraining by identity, so the pretraining is part of the
  fine-tune's own identity: another pretraining budget is another hash, hence another fine-tuning cell
  and run folder, and no other run (a newer one started by hand) can stand in for it. `bench table
  bigs_table1` pretrains each row, then fine-tunes it with `init=run:<that row's pretraining hash>`;
  `bench pretrain` prints the `init=` of what it ran.
* `run:<config hash>@<step>`: that pretraining's snapshot at `step` (`trainer.snapshot_steps`,
  `snapshots/step_<step>.pt`): one pretraining, several budgets (the paper's 11B- and 29B-token models are
  steps of its 97B-token run).
* A run folder of this project (pretraining or fine-tuning): its `best.pt`, else its `last.pt`.
* A checkpoint file written by this project (`best.pt` / `last.pt`): ``{"model", "bigs_config", ...}``.
* `hf:<repo>`: a released checkpoint of the authors (e.g. `hf:JunxiongWang/BiGS_128`, or a local folder
  with their `config.json` and weights) through `pnlp_bench.bigs.convert.load_pretrained`.

The architecture is the checkpoint's (its `bigs_config`); dropout and padding masking follow the run's
`backbone` config, and so does pooling except for `hf:` checkpoints, which keep the pooling they were
trained with. The encoder (`backbone.*`) is always loaded; the MLM head too when the run
pretrains; a task head only from a checkpoint of the same data set and task, else it starts fresh (as
fine-tuning from a pretrained encoder expects).

Longer sequences than the checkpoint's positions (pretraining at 128, then 512 or 4096): the learned
position table is extended by tiling it (rows 0..P-1 repeated), a choice of this project that keeps every
new position a trained vector (Longformer extends RoBERTa's table by copying it the same way).
"""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pnlp_bench.core import store
from pnlp_bench.bigs.config import BiGSBackboneConfig
from pnlp_bench.core.checkpoint import load_checkpoint
from pnlp_bench.bigs.model import (
    BiGSConfig,
    BiGSForMaskedLM,
    BiGSForMultipleChoice,
    BiGSForSequenceClassification,
)
from pnlp_bench.bigs.pretrain import SNAPSHOTS, snapshot_path
from pnlp_bench.core.registry import ConfigError

POSITIONS = "backbone.embeddings.position_embeddings.weight"
# fields of the run's backbone config that may differ from the checkpoint's without changing any weight shape
RUN_CHOICES = ("dropout", "pooling", "mask_padding")


def build_for_task(config: BiGSConfig, kind: str, num_labels: int) -> nn.Module:
    if kind == "mlm":
        return BiGSForMaskedLM(config)
    if kind == "multiple_choice":
        return BiGSForMultipleChoice(config)
    return BiGSForSequenceClassification(config, num_labels=1 if kind == "regression" else num_labels)


def extend_positions(table: torch.Tensor, length: int) -> torch.Tensor:
    """The position table tiled (rows repeated in order) to `length` rows; unchanged when long enough."""
    if table.shape[0] >= length:
        return table
    repeats = -(-length // table.shape[0])
    return table.repeat(repeats, 1)[:length].clone()


def checkpoint_file(init: str) -> Path:
    path = Path(init).expanduser()
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise ConfigError(f"init={init}: the folder has no best.pt or last.pt")
    if path.is_file():
        return path
    raise ConfigError(f"init={init}: no such run folder or checkpoint file (or use hf:<repo> for a released one)")


def snapshot_file(spec: str, folder: Path, step: str) -> Path:
    """The snapshot `run:<hash>@<step>` names inside the pretraining's run folder."""
    path = snapshot_path(folder, int(step)) if step.isdigit() else None
    if path is None or not path.is_file():
        kept = sorted((int(p.stem.removeprefix("step_")) for p in (folder / SNAPSHOTS).glob("step_*.pt")))
        have = f"it kept steps {', '.join(map(str, kept))}" if kept else "it kept none (trainer.snapshot_steps)"
        raise ConfigError(f"init={spec}: {folder} has no snapshot at step {step!r}; {have}")
    return path


def find_run(spec: str, output_root: str | Path) -> Path:
    """The run folder `run:<config hash>` names: the finished record of that identity with this code version."""
    config_hash = spec.removeprefix("run:").split("@")[0]
    version = store.code_version()
    finished = store.finished(output_root)
    record = finished.get((config_hash, version))
    if record is None:
        others = sorted(v for h, v in finished if h == config_hash)
        elsewhere = f" (finished there with code version {', '.join(others)} only)" if others else ""
        raise ConfigError(
            f"init={spec}: no finished run with config hash {config_hash} and code version {version} in "
            f"{store.store_path(output_root)}{elsewhere}; run that pretraining first with the same output_root "
            "(bench table bigs_table1 pretrains each row before fine-tuning it; bench pretrain prints the init= of its run)"
        )
    return Path(record["run_dir"])


def from_checkpoint(
    init: str, backbone: BiGSBackboneConfig, kind: str, num_labels: int, max_length: int, data_name: str
) -> tuple[nn.Module, dict]:
    path = checkpoint_file(init)
    saved = load_checkpoint(path, f"init={init}: choose another checkpoint, or run the pretraining that wrote it again")
    if "bigs_config" not in saved or "model" not in saved:
        raise ConfigError(f"init={init}: {path} is not a BiGS checkpoint of this project (no bigs_config)")
    known = {f.name for f in fields(BiGSConfig)}
    stored = BiGSConfig(**{key: value for key, value in saved["bigs_config"].items() if key in known})
    config = replace(
        stored,
        **{name: getattr(backbone, name) for name in RUN_CHOICES},
        max_position_embeddings=max(stored.max_position_embeddings, max_length),
    )
    model = build_for_task(config, kind, num_labels)
    expected = model.state_dict()
    # a task head is reused only for the same data set and task (a 2-way SST-2 head means nothing for CoLA)
    same_task = saved.get("task") == kind and saved.get("data") == data_name
    wanted = {
        name: tensor
        for name, tensor in saved["model"].items()
        if name.startswith("backbone.") or (kind == "mlm" and name.startswith("mlm_head.")) or same_task
    }
    if POSITIONS in wanted:
        wanted[POSITIONS] = extend_positions(wanted[POSITIONS], config.max_position_embeddings)
    missing_backbone = sorted(name for name in expected if name.startswith("backbone.") and name not in wanted)
    if missing_backbone:
        raise ConfigError(f"init={init}: {path} lacks encoder weights such as {missing_backbone[0]}")
    usable = {name: tensor for name, tensor in wanted.items() if name in expected and expected[name].shape == tensor.shape}
    model.load_state_dict(usable, strict=False)
    report = {
        "source": init,
        "file": str(path),
        "loaded_tensors": len(usable),
        "fresh": sorted(set(expected) - set(usable)),
        "positions": f"{stored.max_position_embeddings} -> {config.max_position_embeddings}"
        + (" (tiled)" if config.max_position_embeddings > stored.max_position_embeddings else ""),
    }
    return model, report


def from_hub(init: str, backbone: BiGSBackboneConfig, kind: str, num_labels: int, max_length: int) -> tuple[nn.Module, dict]:
    from pnlp_bench.bigs.convert import load_pretrained

    repo = init.removeprefix("hf:")
    task = {"mlm": "mlm", "multiple_choice": "multiple_choice"}.get(kind, "classification")
    try:
        # pooling stays the checkpoint's own (their config.json says how it was trained)
        model = load_pretrained(
            repo, task, num_labels=1 if kind == "regression" else num_labels, dropout=backbone.dropout, mask_padding=backbone.mask_padding
        )
    except (RuntimeError, FileNotFoundError, ValueError) as error:
        raise ConfigError(f"init={init}: {error}") from None
    stored = model.config.max_position_embeddings
    if stored < max_length:
        state = model.state_dict()
        state[POSITIONS] = extend_positions(state[POSITIONS], max_length)
        config = replace(model.config, max_position_embeddings=max_length)
        extended = build_for_task(config, kind, num_labels)
        extended.load_state_dict(state)
        model = extended
    positions = f"{stored} -> {max(stored, max_length)}" + (" (tiled)" if max_length > stored else "")
    report = {"source": init, "file": f"hf:{repo}", "positions": positions}
    return model, report


def initialise(
    init: str,
    backbone: BiGSBackboneConfig,
    kind: str,
    num_labels: int,
    max_length: int,
    data_name: str,
    output_root: str | Path = "outputs",
) -> tuple[nn.Module, dict[str, Any]]:
    """The model for this run filled from `init`, and a report of what was loaded (for the run record)."""
    if init.startswith("pretrained:"):
        raise ConfigError(
            f"init={init} is gone: it took the newest pretraining folder of the architecture, whatever its budget; "
            "name the pretraining by its identity, init=run:<config hash> (bench pretrain prints it), or by its folder"
        )
    if init.startswith("run:"):
        folder = find_run(init, output_root)
        _, at, step = init.partition("@")
        source = snapshot_file(init, folder, step) if at else folder
        model, report = from_checkpoint(str(source), backbone, kind, num_labels, max_length, data_name)
        report["source"] = f"{init} -> {folder}"
    elif init.startswith("hf:"):
        model, report = from_hub(init, backbone, kind, num_labels, max_length)
    else:
        model, report = from_checkpoint(init, backbone, kind, num_labels, max_length, data_name)
    composed = backbone.bigs_config(vocab_size=model.config.vocab_size)
    differs = [
        name
        for name, value in asdict(model.config).items()
        if name not in (*RUN_CHOICES, "max_position_embeddings", "vocab_size") and getattr(composed, name) != value
    ]
    report["architecture"] = "from the init checkpoint" + (f" (differs from the composed backbone in {', '.join(differs)})" if differs else "")
    return model, report
