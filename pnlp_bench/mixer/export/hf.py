"""A trained pNLP-Mixer as a Hugging Face style folder, loadable with `PNLPMixerForHub.from_pretrained(folder)`.

The folder (`bench export RUN_DIR --format hf`; `--format int8` writes the same folder with int8 weights):

- `config.json`: everything that rebuilds the model: the run's resolved `projection`, `bottleneck`,
  `backbone` and `data` configs (`run_config`), the sequence length, the label and tag names, the package
  version, the parameter counts, which weights file it holds and where the run came from;
- `model.safetensors`: the `PNLPModel` state dict in fp32 (or `model.int8.safetensors`, see int8.py);
- `vocab.txt`: the WordPiece vocabulary of projections that read one (MinHash, SimHash, TSP, BERT), so the
  folder maps words as training did without this package's assets;
- `projection_state.json`: the fitted state of projections that have one (projection=embedding: its vocabulary);
- `run_record.json`: the run's metrics.json record without its per-epoch history, and `README.md`, the model
  card written from it (data set, scores with budget and seed, parameters, the data's licence, how to load).

`PNLPMixerForHub` is a `PNLPModel` (same state dict keys, so `MixerPredictor` serves it) mixed with
huggingface_hub's `PyTorchModelHubMixin`: `from_pretrained` reads a local folder or a Hub repository and
`push_to_hub` uploads the folder `save_pretrained` writes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from omegaconf import OmegaConf

from pnlp_bench import __version__
from pnlp_bench.core.atomic import write_atomic, write_json_atomic, write_text_atomic
from pnlp_bench.core.checkpoint import DamagedCheckpointError
from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.paths import MBERT_CASED_VOCAB
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import LabelSpace
from pnlp_bench.mixer.export import int8
from pnlp_bench.mixer.inference import TextPredictor
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.pipeline import build_model, load_trained
from pnlp_bench.mixer.projection import PROJECTIONS, Projection

CONFIG_FILE = "config.json"
WEIGHTS_FILES = {"fp32": "model.safetensors", "int8": "model.int8.safetensors"}
VOCAB_FILE = "vocab.txt"
PROJECTION_STATE_FILE = "projection_state.json"
RECORD_FILE = "run_record.json"
CARD_FILE = "README.md"
FORMAT = "pnlp-mixer"
FORMAT_VERSION = 1
RUN_CONFIG_NODES = ("projection", "bottleneck", "backbone", "data")
PAPER_URL = "https://arxiv.org/abs/2202.04350"

# Data licences as the data READMEs (../shared/data/*/README.md, the embedded sample's) state them:
# (words for the card, the Hub's licence id or None).
LICENCES: dict[str, tuple[str, str | None]] = {
    "mtop": ("CC BY-SA 4.0 (MTOP, Li et al. 2021)", "cc-by-sa-4.0"),
    "mtop_sample": ("CC BY-SA 4.0 (MTOP, Li et al. 2021; the sample embedded in pnlp-bench)", "cc-by-sa-4.0"),
    "mtop_aligned": ("CC BY-SA 4.0 (MTOP, Li et al. 2021)", "cc-by-sa-4.0"),
    "hyperpartisan": ("CC BY 4.0 (SemEval-2019 Task 4, Zenodo release)", "cc-by-4.0"),
    "imdb": ("no formal licence: released by Maas et al. (2011) for research", None),
    "atis": ("not openly licensed: ATIS is LDC data (LDC user agreement), research use only", None),
    "multiatis": ("not openly licensed: MultiATIS++ is LDC data (LDC2021T04), research use only", None),
}
UNKNOWN_LICENCE = ("see the data set's licence", None)


class PNLPMixerForHub(
    PNLPModel,
    PyTorchModelHubMixin,
    library_name="pnlp-bench",
    paper_url=PAPER_URL,
    tags=["pnlp-mixer", "text-classification", "token-classification"],
):
    """A trained pNLP-Mixer with its projection, labels and run record; `config` is the folder's config.json."""

    def __init__(self, config: dict[str, Any], projection: Projection | None = None) -> None:
        check_config(config, CONFIG_FILE)
        labels = LabelSpace(labels=list(config["labels"]), tags=list(config["tags"]))
        data_config = data_config_of(config["run_config"])
        model = build_model(OmegaConf.create(config["run_config"]), data_config, SimpleNamespace(labels=labels))
        super().__init__(model.bottleneck, model.backbone, model.head)
        self.config = config
        self.labels = labels
        self.data_config = data_config
        self.projection = projection if projection is not None else build_projection(config["run_config"]["projection"])
        self.vocab_source: Path | None = None  # the vocabulary file the projection reads, copied into a saved folder
        self.record: dict[str, Any] | None = None
        self.eval()

    # ------------------------------------------------------------ from a run folder

    @classmethod
    def from_run(cls, run_dir: Path) -> "PNLPMixerForHub":
        """The best checkpoint of a `bench run` folder, with its run record (metrics.json) where there is one."""
        from pnlp_bench.core.checkpoint import load_checkpoint

        model, projection, data_config, labels = load_trained(run_dir)
        run_config = load_checkpoint(run_dir / "best.pt", "train the run again")["config"]
        record = read_record(run_dir / "metrics.json")
        config = export_config(run_config, labels, model, record)
        hub = cls(config, projection=projection)
        hub.load_state_dict(model.state_dict())
        hub.vocab_source = vocab_source(run_config["projection"])
        hub.record = record
        return hub.eval()

    # ------------------------------------------------------------ saving

    def _save_pretrained(self, save_directory: Path) -> None:
        self.write_folder(Path(save_directory), "fp32")

    def write_folder(self, folder: Path, weights: str) -> dict[str, Any]:
        """Write the folder (see the module docstring) with `weights` fp32 or int8; a report of what it holds."""
        if weights not in WEIGHTS_FILES:
            raise ConfigError(f"weights must be {' or '.join(WEIGHTS_FILES)}, got {weights!r}")
        from safetensors.torch import save

        folder.mkdir(parents=True, exist_ok=True)
        for name in WEIGHTS_FILES.values():  # a folder holds one weights file: an older export's other one goes
            (folder / name).unlink(missing_ok=True)
        weights_path = folder / WEIGHTS_FILES[weights]
        state = {name: tensor.detach().contiguous() for name, tensor in self.state_dict().items()}
        report: dict[str, Any] = {"folder": str(folder), "weights": weights}
        fp32_bytes = save(state, metadata={"format": FORMAT})
        if weights == "int8":
            tensors, metadata = int8.int8_tensors(self)
            write_atomic(weights_path, lambda handle: handle.write(save(tensors, metadata={"format": FORMAT, **metadata})))
            report["sizes"] = int8.size_report(tensors, weights_path.stat().st_size, len(fp32_bytes))
        else:
            write_atomic(weights_path, lambda handle: handle.write(fp32_bytes))
        config = {**self.config, "weights": weights, "weights_file": weights_path.name}
        if self.config.get("weights") == "int8" and weights == "fp32":  # an int8 export exported again as hf
            config["dequantized_from_int8"] = True
        projection_node = dict(config["run_config"]["projection"])
        if self.vocab_source is not None:
            if not self.vocab_source.is_file():
                raise OneLineError(f"{self.vocab_source}: the projection's vocabulary file is missing; cannot export")
            if self.vocab_source.resolve() != (folder / VOCAB_FILE).resolve():
                shutil.copyfile(self.vocab_source, folder / VOCAB_FILE)
            projection_node["vocab"] = VOCAB_FILE
        config["run_config"] = {**config["run_config"], "projection": projection_node}
        state_of = getattr(self.projection, "state", None)
        if state_of is not None:
            write_json_atomic(folder / PROJECTION_STATE_FILE, state_of())
        write_json_atomic(folder / CONFIG_FILE, config)
        if self.record is not None:
            write_json_atomic(folder / RECORD_FILE, self.record)
        write_text_atomic(folder / CARD_FILE, model_card(config, self.record))
        report["files"] = {path.name: path.stat().st_size for path in sorted(folder.iterdir()) if path.is_file()}
        report["folder_bytes"] = sum(report["files"].values())
        return report

    def push_to_hub(self, repo_id: str, **kwargs: Any) -> str:
        """`PyTorchModelHubMixin.push_to_hub` (create the repository, upload the saved folder), with a failure to
        reach the Hub (offline, no token) said in one line."""
        try:
            return super().push_to_hub(repo_id, **kwargs)
        except (OSError, ValueError, RuntimeError) as error:
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise OneLineError(f"push_to_hub({repo_id!r}): the Hugging Face Hub refused or is unreachable "
                               f"({type(error).__name__}: {first}); the folder itself: save_pretrained(DIR)") from None

    # ------------------------------------------------------------ loading

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: Any, force_download: bool,
                         local_files_only: bool, token: Any, config: dict[str, Any] | None = None,
                         **model_kwargs: Any) -> "PNLPMixerForHub":
        folder = Path(model_id)
        if not folder.is_dir():  # a Hub repository: the whole folder, then as a local one
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(repo_id=model_id, revision=revision, cache_dir=cache_dir, token=token,
                                            force_download=force_download, local_files_only=local_files_only))
        return load_exported(folder)

    def predict_text(self, text: str, top_k: int = 0) -> dict[str, Any]:
        """The prediction `bench predict` prints for one text: label, its probability, and tags where the head tags."""
        from pnlp_bench.mixer.data.text import words_of

        return TextPredictor(self, self.projection, self.data_config.max_length, self.labels, top_k).one(words_of(text))


def check_config(config: Any, where: Path | str) -> None:
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ConfigError(f"{where}: not a pNLP-Mixer export (no \"format\": \"{FORMAT}\")")
    missing = [key for key in ("run_config", "labels", "tags", "format_version") if key not in config]
    missing += [f"run_config.{node}" for node in RUN_CONFIG_NODES if node not in config.get("run_config", {})]
    if missing:
        raise ConfigError(f"{where}: key {missing[0]!r} is missing")
    if config["format_version"] > FORMAT_VERSION:
        raise ConfigError(f"{where}: format_version {config['format_version']} is newer than this pnlp-bench reads "
                          f"({FORMAT_VERSION}); upgrade pnlp-bench")


def data_config_of(run_config: dict[str, Any]) -> DataConfig:
    data = run_config["data"]
    return DataConfig(**{key: data[key] for key in ("name", "max_length", "head", "head_options")})


def build_projection(projection_config: dict[str, Any], folder: Path | None = None) -> Projection:
    """The projection of a config.json's `run_config.projection`; a relative vocab is the folder's file."""
    projection_options = dict(projection_config)
    if folder is not None and projection_options.get("vocab") and not Path(projection_options["vocab"]).is_absolute():
        projection_options["vocab"] = str(folder / projection_options["vocab"])
    return PROJECTIONS.build(projection_options.pop("name"), projection_options, "projection")


def vocab_source(projection_config: dict[str, Any]) -> Path | None:
    """The vocabulary file a projection reads (its `vocab`, by default mBERT-cased); None for projections without one."""
    if "vocab" not in projection_config:
        return None
    return Path(projection_config["vocab"]) if projection_config["vocab"] else MBERT_CASED_VOCAB


def read_record(path: Path) -> dict[str, Any] | None:
    """A run's metrics.json without its per-epoch history; None where the run has none (interrupted)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a JSON run record ({error})") from None
    return {key: value for key, value in record.items() if key != "history"}


def export_config(run_config: dict[str, Any], labels: LabelSpace, model: PNLPModel, record: dict[str, Any] | None) -> dict[str, Any]:
    """config.json of a run's export (see the module docstring)."""
    from pnlp_bench.core.identity import with_renamed_keys

    resolved = with_renamed_keys(run_config)
    kept = {node: resolved[node] for node in RUN_CONFIG_NODES}
    record = record or {}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pnlp_bench_version": __version__,
        "run_config": kept,
        "max_length": kept["data"]["max_length"],
        "head": kept["data"]["head"],
        "labels": list(labels.labels),
        "tags": list(labels.tags),
        "parameters": model.parameter_counts(),
        "source": {
            "run_dir": record.get("run_dir"),
            "config_hash": record.get("config_hash"),
            "data": record.get("data", kept["data"]["name"]),
            "model": record.get("model"),
            "seed": record.get("seed", resolved.get("seed")),
            "budget": record.get("budget"),
            "best_epoch": record.get("best_epoch"),
            "commit": (record.get("provenance") or {}).get("commit"),
        },
    }


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; {folder} is not a `bench export` folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None
    check_config(config, path)
    return config


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The fp32 state dict of a weights file of either kind (int8 dequantized); one line for a damaged file."""
    from safetensors import SafetensorError, safe_open

    advice = "export the run again (bench export RUN_DIR)"
    if not path.is_file():
        raise ConfigError(f"{path}: missing (config.json names it as the weights file)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        if path.name == WEIGHTS_FILES["int8"]:
            return int8.dequantized_state(tensors, metadata)
        return tensors
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        raise DamagedCheckpointError(path, error, advice) from None


def load_exported(folder: Path) -> PNLPMixerForHub:
    """A `bench export` folder (hf or int8) as the model it was exported from."""
    config = read_config(folder)
    state_path = folder / PROJECTION_STATE_FILE
    projection = build_projection(config["run_config"]["projection"], folder)
    if hasattr(projection, "load_state"):
        if not state_path.is_file():
            raise ConfigError(f"{state_path}: missing (projection {config['run_config']['projection']['name']!r} needs its fitted state)")
        projection.load_state(json.loads(state_path.read_text(encoding="utf-8")))
    hub = PNLPMixerForHub(config, projection=projection)
    weights_path = folder / config.get("weights_file", WEIGHTS_FILES["fp32"])
    state = read_weights(weights_path)
    expected = set(hub.state_dict())
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ConfigError(f"{weights_path}: does not fit the model of config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    hub.load_state_dict(state)
    hub.vocab_source = vocab_source(hub.config["run_config"]["projection"])
    if hub.vocab_source is not None and not hub.vocab_source.is_absolute():
        hub.vocab_source = folder / hub.vocab_source
    hub.record = read_record(folder / RECORD_FILE)
    return hub.eval()


def load_folder(path: Path) -> PNLPMixerForHub:
    """A run folder of `bench run` (best.pt) or a folder of `bench export` (config.json), whichever `path` is."""
    if not path.exists():
        raise ConfigError(f"{path}: no such folder")
    if not path.is_dir():
        raise ConfigError(f"{path}: not a folder (give a `bench run` folder or a `bench export` folder)")
    if (path / "best.pt").is_file():
        return PNLPMixerForHub.from_run(path)
    if (path / CONFIG_FILE).is_file():
        return load_exported(path)
    raise ConfigError(f"{path / 'best.pt'}: no checkpoint, nor a config.json of an export (is {path} the folder of "
                      "a `bench run` past its first epoch, or of a `bench export`?)")


# ------------------------------------------------------------ the model card


def model_card(config: dict[str, Any], record: dict[str, Any] | None) -> str:
    """README.md of an exported folder: what was trained on what, its scores, the data's licence, how to load it."""
    source, run_config = config["source"], config["run_config"]
    data_name = source.get("data") or run_config["data"]["name"]
    licence, licence_id = LICENCES.get(data_name, LICENCES.get(run_config["data"]["name"], UNKNOWN_LICENCE))
    projection = run_config["projection"]
    backbone = {key: value for key, value in run_config["backbone"].items() if key != "name"}
    weights = config.get("weights", "fp32")
    languages = ", ".join(run_config["data"].get("languages") or [])
    lines = [
        "---",
        "library_name: pnlp-bench",
        f"license: {licence_id or 'other'}",
        "tags: [pnlp-mixer, model_hub_mixin, pytorch_model_hub_mixin]",
        "---",
        "",
        f"# pNLP-Mixer {source.get('model') or ''} on {data_name} ({weights} weights)".replace("  ", " "),
        "",
        f"A pNLP-Mixer ([Fusco et al., 2022]({PAPER_URL})) trained and exported with pnlp-bench {config['pnlp_bench_version']}: "
        f"projection `{projection['name']}` ({', '.join(f'{k}={v}' for k, v in projection.items() if k != 'name')}), "
        f"bottleneck {run_config['bottleneck']['dim']}, backbone `{run_config['backbone']['name']}` "
        f"({', '.join(f'{k}={v}' for k, v in backbone.items())}), head `{config['head']}`"
        + "".join(f" ({', '.join(f'{k}={v}' for k, v in run_config['data']['head_options'].items())})" for _ in [0] if run_config["data"].get("head_options"))
        + f", at most {config['max_length']} words per text. "
        f"{config['parameters']['total']:,} parameters ({config['parameters']['paper_comparable']:,} as the paper counts them); "
        f"{len(config['labels'])} labels" + (f", {len(config['tags'])} tags." if config["tags"] else "."),
        "",
    ]
    if weights == "int8":
        lines += ["The weights are int8 (symmetric, per output channel, with fp32 scales; biases and LayerNorm fp32) "
                  "and are dequantized when loaded: the predictions are those of the run's simulated int8 evaluation.", ""]
    elif config.get("dequantized_from_int8"):
        lines += ["The weights are the dequantized values of an int8 export (fp32 here, int8 precision).", ""]
    lines += card_results(record, source)
    lines += [
        "## Data and licence",
        "",
        f"Trained on `{data_name}` (languages: {languages or 'n/a'}). Data licence: {licence}. "
        "The code of pnlp-bench is Apache-2.0.",
        "",
        "## How to use",
        "",
        "```python",
        "from pnlp_bench.mixer.export.hf import PNLPMixerForHub",
        "",
        'model = PNLPMixerForHub.from_pretrained("THIS_FOLDER")  # or a Hub repository id',
        'print(model.predict_text("wake me up at seven"))',
        "```",
        "",
        "or on the command line (`--top-k 3` for the three likeliest labels, `--file F --batch-size 256` for a file):",
        "",
        "```",
        'bench predict THIS_FOLDER "wake me up at seven"',
        "```",
        "",
        "## Files",
        "",
        f"`config.json` (the run's projection, bottleneck, backbone and data configs, labels, tags), "
        f"`{WEIGHTS_FILES[weights]}` (the weights), "
        + (f"`{VOCAB_FILE}` (the projection's WordPiece vocabulary), " if "vocab" in projection else "")
        + (f"`{PROJECTION_STATE_FILE}` (the fitted projection), " if projection["name"] == "embedding" else "")
        + f"`{RECORD_FILE}` (the run's record).",
        "",
    ]
    return "\n".join(lines)


def card_results(record: dict[str, Any] | None, source: dict[str, Any]) -> list[str]:
    if not record or "metrics" not in record:
        return ["## Results", "", "No run record (metrics.json) came with this model.", ""]
    names = [name for name in record["metrics"].get("test", {}).get("avg", {}) if name != "examples"]
    lines = [
        "## Results",
        "",
        f"Budget: {record.get('budget')}, seed {record.get('seed')}, best epoch {record.get('best_epoch')} "
        f"(run `{record.get('config_hash')}`, commit {str(source.get('commit') or '')[:10]}, "
        f"{(record.get('provenance') or {}).get('device', 'unknown device')}).",
        "",
        "| split | language | " + " | ".join(name.replace("_", " ") for name in names) + " | examples |",
        "|---|---|" + "---:|" * (len(names) + 1),
    ]
    for key, suffix in (("metrics", ""), ("metrics_int8", " (int8)")):
        for split in ("eval", "test"):
            for language, scores in (record.get(key) or {}).get(split, {}).items():
                cells = " | ".join(f"{scores[name]:.2f}" if name in scores else "" for name in names)
                lines.append(f"| {split}{suffix} | {language} | {cells} | {scores.get('examples', '')} |")
    return [*lines, ""]


def folder_words(hub: PNLPMixerForHub, words_file: Path | None) -> list[str]:
    """The words an ONNX export puts in its word -> buckets table: `words_file` (one per line) when given, else
    the fitted vocabulary of projection=embedding, else the unique words of the run's training split."""
    if words_file is not None:
        try:
            return list(dict.fromkeys(line.strip() for line in words_file.read_text(encoding="utf-8").splitlines() if line.strip()))
        except OSError as error:
            raise ConfigError(f"{words_file}: cannot read the words ({error.strerror})") from None
    vocabulary = getattr(hub.projection, "vocabulary", None)
    if vocabulary:
        return list(vocabulary)
    from pnlp_bench.core.registry import typed_config
    from pnlp_bench.mixer.data.loaders import load_data

    data = dict(hub.config["run_config"]["data"])
    data.pop("_target_", None)
    data_config = typed_config(DataConfig, data, "data")
    splits = load_data(data_config).splits
    return list(dict.fromkeys(word for example in splits["train"] for word in example.words))

