"""ONNX export of a trained pNLP-Mixer (`bench export RUN_DIR --format onnx`), the runner that serves the
exported folder with onnxruntime, and their parity with the torch model.

The graph holds only standard ops: per-word bucket ids -> counts (ScatterElements, add) -> the 2w+1
neighbours' counts side by side -> one Linear over the (2w+1)·F window features (the "dense" bottleneck
path of `pnlp_bench/mixer/models/bottleneck.py`, whichever path the model trained with) -> the MLP-Mixer
blocks over all S positions (LayerNorm, MatMul, exact GELU) -> the head's logits. The projection (WordPiece,
hashing) stays out of the graph: the folder carries each known word's bucket ids, so a runtime only looks
words up. What a word missing from the table gets is in `UNKNOWN_WORDS` and the folder's README.

The padded plain forward equals the training model's padding-aware one up to float rounding (the mixer's
module doc), and the dense bottleneck equals the bag path likewise: `parity` measures the difference.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pnlp_bench.core.atomic import write_atomic, write_json_atomic, write_text_atomic
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import LabelSpace
from pnlp_bench.mixer.inference import padded_inputs
from pnlp_bench.mixer.models.bottleneck import PAD
from pnlp_bench.mixer.models.heads import IntentSlotHead, bio_structure, bio_transitions, bio_viterbi_decode
from pnlp_bench.mixer.models.mixer import Mixer
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.projection import PROJECTIONS
from pnlp_bench.mixer.projection.base import Projection

# 17: ScatterElements with reduction=add (16+) and LayerNormalization (17+); onnxruntime >= 1.12 runs it.
OPSET = 17
# The TorchScript-based exporter first: on these models it writes the same graph in a quarter of the time
# of the dynamo one (4 s against 17 s for a tiny model on one core), at opset 17 (dynamo writes 18 at least).
# The dynamo exporter takes over where the TorchScript one is gone or fails; the report names the one used.
EXPORTERS = {"torchscript": "torch.onnx.export(dynamo=False), TorchScript-based", "dynamo": "torch.onnx.export(dynamo=True)"}
FORMAT = "pnlp-bench onnx v1"
MODEL_FILE, FEATURIZER_FILE, FEATURES_FILE, VALUES_FILE = "model.onnx", "featurizer.json", "features.bin", "values.bin"
LABELS_FILE, README_FILE = "labels.json", "README.md"
UNKNOWN_MODES = ("auto", "project", "empty")
UNKNOWN_WORDS = (
    "A word missing from the table is a word position (mask true) with no buckets (every id -1): the model "
    "sees the bottleneck's bias there, as for a word whose features were dropped. Exact features for it come "
    "from the projection named in featurizer.json (OnnxPredictor(folder, unknown='project') rebuilds it with "
    "pnlp_bench; the recipe for a runtime without it is in this folder's README.md)."
)
# Utterances of table words the export runs through both torch and onnxruntime to check itself.
CHECK_UTTERANCES, CHECK_WORDS = 32, 12


class DenseExportModel(nn.Module):
    """A trained PNLPModel's maths on standard ops: its weights, the dense bottleneck, the plain mixer forward.

    Inputs: features [batch, S, k] int64 bucket ids (PAD = -1 for padding and missing buckets), mask [batch, S]
    bool, and values [batch, S, k] float32 only for projections that weight their buckets (SimHash, ...)."""

    def __init__(self, model: PNLPModel) -> None:
        super().__init__()
        model = copy.deepcopy(model).float().cpu().eval()
        bottleneck = model.bottleneck
        self.feature_size, self.window = bottleneck.feature_size, bottleneck.window
        self.bottleneck = nn.Linear(bottleneck.in_dim, bottleneck.out_dim)
        with torch.no_grad():  # the bottleneck stores its weight [in, out] (embedding orientation)
            self.bottleneck.weight.copy_(bottleneck.weight.t())
            self.bottleneck.bias.copy_(bottleneck.bias)
        self.blocks = model.backbone.blocks
        self.head = model.head

    def forward(self, features: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        batch, length, width = features.shape
        source = torch.ones(batch, length, width) if values is None else values
        # Padding goes to an extra bucket F that is dropped, as the bottleneck's own dense path does.
        slots = torch.where(features == PAD, torch.full_like(features, self.feature_size), features)
        counts = torch.zeros(batch, length, self.feature_size + 1).scatter_add(2, slots, source)[..., : self.feature_size]
        if self.window:
            padded = F.pad(counts, (0, 0, self.window, self.window))
            counts = torch.cat([padded[:, slot : slot + length] for slot in range(2 * self.window + 1)], dim=-1)
        outputs = self.head(self.blocks(self.bottleneck(counts)), mask)
        return tuple(outputs[name] for name in output_names(self.head))


def output_names(head: nn.Module) -> list[str]:
    """The graph's outputs: the head's logits, under the keys of its forward."""
    return ["intent_logits", "tag_logits"] if isinstance(head, IntentSlotHead) else ["logits"]


def projection_name(projection: Projection) -> str | None:
    """The registered name of a projection (from its config's type), None for one built outside the registry."""
    config = getattr(projection, "config", None)
    return next((name for name in PROJECTIONS.names() if isinstance(config, PROJECTIONS.config_class(name))), None)


def export_onnx(
    model: PNLPModel,
    projection: Projection,
    data_config: DataConfig,
    labels: LabelSpace,
    out_dir: Path,
    words: list[str],
) -> dict[str, Any]:
    """Write model.onnx, the word table (featurizer.json + features.bin [+ values.bin]), labels.json and a
    README.md into out_dir; returns the report: files, sizes, opset, exporter, inputs, outputs and a self-check."""
    if not isinstance(model.backbone, Mixer):
        raise ConfigError(f"export --format onnx: backbone {type(model.backbone).__name__} is not exported "
                          "(the ONNX graph is the MLP-Mixer's; backbone.name must be mixer)")
    table_words = list(dict.fromkeys(words))
    if not table_words:
        raise ConfigError("export --format onnx: no words for the word table (give the training vocabulary)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seq_len = data_config.max_length
    if model.backbone.blocks[0].token_mixing[0].in_features != seq_len:
        raise ConfigError(f"data.max_length: {seq_len}, but the model mixes over "
                          f"{model.backbone.blocks[0].token_mixing[0].in_features} positions")
    features = projection.word_features(table_words)
    indices = features.indices.numpy()
    width = indices.shape[1]
    table_dtype = "<i2" if model.bottleneck.feature_size <= np.iinfo(np.int16).max else "<i4"
    write_atomic_bytes(out_dir / FEATURES_FILE, indices.astype(table_dtype).tobytes())
    has_values = features.values is not None
    if has_values:
        write_atomic_bytes(out_dir / VALUES_FILE, features.values.float().numpy().astype("<f4").tobytes())
    registered = projection_name(projection)
    rebuildable = registered is not None and not hasattr(projection, "load_state")
    featurizer = {
        "format": FORMAT,
        "seq_len": seq_len,
        "feature_size": model.bottleneck.feature_size,
        "window": model.bottleneck.window,
        "features_per_word": width,
        "pad": PAD,
        "table": {"words": len(table_words), "features": FEATURES_FILE, "features_dtype": table_dtype,
                  "values": VALUES_FILE if has_values else None, "values_dtype": "<f4" if has_values else None,
                  "shape": [len(table_words), width]},
        "projection": {"name": registered, "cache_key": projection.cache_key(), "rebuildable": rebuildable,
                       "config": dataclasses.asdict(projection.config) if rebuildable else None},
        "unknown_words": UNKNOWN_WORDS,
        "words": table_words,
    }
    write_json_atomic(out_dir / FEATURIZER_FILE, featurizer)
    head = model.head
    decode = getattr(head, "decode", "argmax")
    names = output_names(head)
    write_json_atomic(out_dir / LABELS_FILE, {"head": data_config.head, "decode": decode,
                                              "labels": list(labels.labels), "tags": list(labels.tags), "outputs": names})
    inputs = ["features", "mask", *(["values"] if has_values else [])]
    exported = DenseExportModel(model)
    example = padded_inputs(projection, table_words[: min(len(table_words), seq_len)], seq_len)
    arguments = (example[0].long(), example[1]) + ((example[2].float(),) if has_values else ())
    exporter, opset = write_graph(exported, arguments, out_dir / MODEL_FILE, inputs, names)
    shapes = {"features": ["batch", seq_len, width], "mask": ["batch", seq_len], "values": ["batch", seq_len, width]}
    io = {
        "inputs": [{"name": name, "dtype": "float32" if name == "values" else ("bool" if name == "mask" else "int64"),
                    "shape": shapes[name]} for name in inputs],
        "outputs": [{"name": name, "dtype": "float32",
                     "shape": ["batch", seq_len, len(labels.tags)] if name == "tag_logits" else ["batch", len(labels.labels)]}
                    for name in names],
    }
    write_text_atomic(out_dir / README_FILE, folder_readme(featurizer, io, decode, EXPORTERS[exporter], opset))
    files = [MODEL_FILE, FEATURIZER_FILE, FEATURES_FILE, *([VALUES_FILE] if has_values else []), LABELS_FILE, README_FILE]
    check_utterances = [table_words[start : start + CHECK_WORDS]
                        for start in range(0, min(len(table_words), CHECK_UTTERANCES * CHECK_WORDS), CHECK_WORDS)]
    return {
        "format": "onnx",
        "folder": str(out_dir),
        "files": {name: str(out_dir / name) for name in files},
        "sizes": {name: (out_dir / name).stat().st_size for name in files},
        "opset": opset,
        "exporter": EXPORTERS[exporter],
        "words": len(table_words),
        **io,
        "check": parity(model, projection, out_dir, check_utterances),
    }


def write_graph(exported: nn.Module, arguments: tuple, path: Path, inputs: list[str], outputs: list[str]) -> tuple[str, int]:
    """model.onnx with a dynamic batch axis; (the exporter used, the opset written). The graph is built and
    checked in memory, then written through core/atomic.py, so a failed export leaves no half file."""
    import io as memory

    import onnx

    dynamic_axes = {name: {0: "batch"} for name in [*inputs, *outputs]}
    with torch.no_grad(), warnings.catch_warnings():
        # The trace's notes on the head's "fewer positions than the mask" test (always false here: every
        # position is computed) and on slices it cannot fold: nothing a reader of the export can act on.
        warnings.simplefilter("ignore")
        try:
            buffer = memory.BytesIO()
            torch.onnx.export(exported, arguments, buffer, input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
            serialized, exporter = buffer.getvalue(), "torchscript"
        except Exception:
            batch = torch.export.Dim("batch")
            shapes = {name: {0: batch} for name in ["features", "mask", "values"][: len(arguments)]}
            program = torch.onnx.export(exported, arguments, input_names=inputs, output_names=outputs,
                                        dynamic_shapes=shapes, opset_version=max(OPSET, 18), dynamo=True)
            serialized, exporter = program.model_proto.SerializeToString(), "dynamo"
    graph = onnx.load_from_string(serialized)
    onnx.checker.check_model(graph)
    opset = next(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx"))
    write_atomic_bytes(path, serialized)
    return exporter, opset


def write_atomic_bytes(path: Path, data: bytes) -> None:
    write_atomic(path, lambda handle: handle.write(data))


# ---------------------------------------------------------------- serving the folder


class OnnxPredictor:
    """Predictions from an exported folder with onnxruntime: words looked up in the table, padded to S.

    unknown: what a word missing from the table gets: "empty" (no buckets, what a runtime without pnlp_bench
    does), "project" (the projection rebuilt from featurizer.json computes it exactly), "auto" (project where
    the folder says the projection can be rebuilt, else empty). threads: onnxruntime's intra-op threads; one by
    default, as `MixerPredictor` serves one utterance (None: onnxruntime's default, a spinning thread per core,
    which on a shared machine competes with everything else)."""

    def __init__(self, folder: Path, unknown: str = "auto", threads: int | None = 1) -> None:
        import onnxruntime

        self.folder = Path(folder)
        for name in (MODEL_FILE, FEATURIZER_FILE, FEATURES_FILE, LABELS_FILE):
            if not (self.folder / name).is_file():
                raise ConfigError(f"{self.folder / name}: missing; is {self.folder} a folder of "
                                  "`bench export RUN_DIR --format onnx`? export it again")
        if unknown not in UNKNOWN_MODES:
            raise ConfigError(f"OnnxPredictor: unknown must be {', '.join(UNKNOWN_MODES)}, got {unknown!r}")
        featurizer = json.loads((self.folder / FEATURIZER_FILE).read_text(encoding="utf-8"))
        if featurizer.get("format") != FORMAT:
            raise ConfigError(f"{self.folder / FEATURIZER_FILE}: format {featurizer.get('format')!r}, expected {FORMAT!r}")
        self.seq_len, self.width = int(featurizer["seq_len"]), int(featurizer["features_per_word"])
        table = featurizer["table"]
        self.rows = {word: row for row, word in enumerate(featurizer["words"])}
        self.indices = np.fromfile(self.folder / table["features"], dtype=table["features_dtype"]).astype(np.int64)
        self.indices = self.indices.reshape(table["shape"])
        self.values = None
        if table["values"] is not None:
            self.values = np.fromfile(self.folder / table["values"], dtype=table["values_dtype"]).reshape(table["shape"])
        rebuildable = featurizer["projection"]["rebuildable"]
        if unknown == "project" and not rebuildable:
            raise ConfigError(f"{self.folder / FEATURIZER_FILE}: projection.rebuildable is false; use unknown='empty'")
        self.projection = None
        if unknown == "project" or (unknown == "auto" and rebuildable):
            spec = featurizer["projection"]
            self.projection = PROJECTIONS.build(spec["name"], spec["config"], f"{self.folder / FEATURIZER_FILE}: projection")
        labels = json.loads((self.folder / LABELS_FILE).read_text(encoding="utf-8"))
        self.labels = LabelSpace(labels=labels["labels"], tags=labels["tags"])
        self.decode_rule, self.output_names = labels["decode"], labels["outputs"]
        if self.decode_rule == "viterbi":
            self._start = bio_transitions(self.labels.tags)[0]
            self._inside, self._begins = bio_structure(self.labels.tags)
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = onnxruntime.InferenceSession(str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.input_names = [node.name for node in self.session.get_inputs()]

    def word_features(self, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """[n, k] int64 bucket ids (and [n, k] values where the projection weights them)."""
        rows = [self.rows.get(word, -1) for word in words]
        indices = self.indices[rows]
        values = None if self.values is None else self.values[rows]
        missing = [position for position, row in enumerate(rows) if row < 0]
        if missing:
            if self.projection is None:
                indices[missing] = PAD
                if values is not None:
                    values[missing] = 0.0
            else:
                computed = self.projection.word_features([words[position] for position in missing])
                indices[missing] = computed.indices.numpy().astype(np.int64)
                if values is not None:
                    values[missing] = computed.values.float().numpy()
        return indices, values

    def inputs(self, utterances: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """The graph's inputs for a batch of utterances, each cut to S words and padded to S."""
        batch = len(utterances)
        features = np.full((batch, self.seq_len, self.width), PAD, dtype=np.int64)
        mask = np.zeros((batch, self.seq_len), dtype=bool)
        values = None if self.values is None else np.zeros((batch, self.seq_len, self.width), dtype=np.float32)
        for row, words in enumerate(utterances):
            words = list(words)[: self.seq_len]
            indices, weights = self.word_features(words)
            features[row, : len(words)] = indices
            mask[row, : len(words)] = True
            if values is not None:
                values[row, : len(words)] = weights
        feeds = {"features": features, "mask": mask, "values": values}
        return {name: feeds[name] for name in self.input_names}

    def outputs(self, utterances: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """The graph's logits for a batch of utterances (all S positions; the words are the first n)."""
        return dict(zip(self.output_names, self.session.run(self.output_names, self.inputs(utterances))))

    def predict(self, words: Sequence[str]) -> dict[str, torch.Tensor]:
        """What `MixerPredictor.predict` returns: `label` [1] and, for intent/slot heads, `tags` [1, n]."""
        if not words:
            raise ValueError("OnnxPredictor needs at least one word")
        n = min(len(words), self.seq_len)
        predicted = self.decode(self.outputs([words]), torch.ones(1, n, dtype=torch.bool))
        return {name: value[:, :n] if name == "tags" else value for name, value in predicted.items()}

    def decode(self, outputs: dict[str, np.ndarray], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """`head.predict` on the graph's outputs: `label` [B] and `tags` [B, n] (0 past each row's words), where
        mask [B, n] marks the word positions of the first n <= S."""
        if "logits" in outputs:
            return {"label": torch.from_numpy(outputs["logits"].argmax(-1))}
        tag_logits = torch.from_numpy(outputs["tag_logits"][:, : mask.shape[1]])
        if self.decode_rule == "viterbi":
            tags = bio_viterbi_decode(F.log_softmax(tag_logits, dim=-1), mask, self._start, self._inside, self._begins)
        else:
            tags = tag_logits.argmax(-1).masked_fill(~mask, 0)
        return {"tags": tags, "label": torch.from_numpy(outputs["intent_logits"].argmax(-1))}


# ---------------------------------------------------------------- parity with torch


def parity(model: PNLPModel, projection: Projection, folder: Path, utterances: Sequence[Sequence[str]],
           batch_size: int = 64) -> dict[str, Any]:
    """onnxruntime (the folder, unknown words projected exactly) against the torch model padded to S, as
    training evaluates it: the largest absolute difference of each logit (tag logits at word positions only)
    and how often the decoded labels and tags agree."""
    predictor = OnnxPredictor(folder, unknown="project" if projection_name(projection) else "empty")
    seq_len = predictor.seq_len
    model = model.eval()
    cut = [list(words)[:seq_len] for words in utterances]
    vocabulary = {word: row for row, word in enumerate(dict.fromkeys(word for words in cut for word in words))}
    table = projection.word_features(list(vocabulary))  # once for all utterances, as training featurizes
    differences: dict[str, float] = {}
    labels_agree = tags_agree = utterances_agree = words = 0
    for start in range(0, len(cut), batch_size):
        chunk = cut[start : start + batch_size]
        rows = torch.full((len(chunk), seq_len), -1, dtype=torch.long)
        for row, words_of_row in enumerate(chunk):
            rows[row, : len(words_of_row)] = torch.tensor([vocabulary[word] for word in words_of_row], dtype=torch.long)
        mask = rows >= 0
        features = table.indices.long()[rows.clamp(min=0)].masked_fill(~mask[..., None], PAD)
        values = None if table.values is None else table.values.float()[rows.clamp(min=0)] * mask[..., None]
        device = next(model.parameters()).device
        with torch.inference_mode():
            on_device = model(features.to(device), mask.to(device), None if values is None else values.to(device))
            expected = {name: value.float().cpu() for name, value in on_device.items()}
            expected_predictions = {name: value.cpu() for name, value in model.head.predict(on_device, mask.to(device)).items()}
        outputs = predictor.outputs(chunk)
        for name, array in outputs.items():
            gap = (torch.from_numpy(array) - expected[name]).abs()
            gap = gap[mask] if name == "tag_logits" else gap
            differences[name] = max(differences.get(name, 0.0), float(gap.max()) if gap.numel() else 0.0)
        predicted = predictor.decode(outputs, mask)
        labels_agree += int((predicted["label"] == expected_predictions["label"]).sum())
        if "tags" in predicted:
            same = (predicted["tags"] == expected_predictions["tags"]) | ~mask
            tags_agree += int((same & mask).sum())
            utterances_agree += int(same.all(dim=1).sum())
            words += int(mask.sum())
    result: dict[str, Any] = {"utterances": len(cut), "max_abs_diff": differences,
                              "label_agreement": labels_agree / max(len(cut), 1)}
    if words:
        result |= {"tag_agreement": tags_agree / words, "utterances_with_identical_tags": utterances_agree / len(cut)}
    return result


def folder_readme(featurizer: dict, io: dict, decode: str, exporter: str, opset: int) -> str:
    """The README.md of an exported folder: inputs and outputs, featurizing with the table, a runnable snippet."""
    seq_len, width, pad = featurizer["seq_len"], featurizer["features_per_word"], featurizer["pad"]
    table = featurizer["table"]
    spec = featurizer["projection"]

    def rows(items: list[dict]) -> list[str]:
        return [f"| `{item['name']}` | {item['dtype']} | [{', '.join(map(str, item['shape']))}] |" for item in items]

    values_line = (f"- `{table['values']}`: the bucket weights, {table['values_dtype']} little-endian, same shape; "
                   "the graph input `values` takes them.") if table["values"] else ""
    recipe = MINHASH_RECIPE.format(**spec["config"]) if spec["name"] == "minhash" and spec["config"] else (
        f"Projection `{spec['name']}` ({spec['cache_key']}): see pnlp_bench/mixer/projection/ for its rules.")
    lines = [
        "# pNLP-Mixer, exported to ONNX",
        "",
        f"Written by `bench export RUN_DIR --format onnx` (pnlp_bench/mixer/export/onnx.py) with {exporter}, "
        f"opset {opset}. The graph has standard ops only; the projection's tokenizer and hashes are not in it: "
        "words are featurized by looking them up in the table below.",
        "",
        "## Files",
        "",
        f"- `{MODEL_FILE}`: the graph (word bucket ids -> window counts -> Linear bottleneck -> MLP-Mixer -> logits).",
        f"- `{FEATURIZER_FILE}`: S, F, the window, the table's layout and `words` (row i of the table is `words[i]`).",
        f"- `{table['features']}`: the bucket ids, {table['features_dtype']} little-endian (numpy notation), "
        f"row-major [{table['shape'][0]}, {width}]: word i's k = {width} ids in [0, {featurizer['feature_size']}), "
        f"{pad} where a word has fewer.",
        *([values_line] if values_line else []),
        f"- `{LABELS_FILE}`: the label names (index = logit column), the tag names, the head and its decoding (`{decode}`).",
        "",
        "## Inputs and outputs (dynamic batch)",
        "",
        "| name | dtype | shape |",
        "|---|---|---|",
        *rows(io["inputs"]),
        *rows(io["outputs"]),
        "",
        f"Featurize an utterance of n words (cut to S = {seq_len}): row t < n of `features` is word t's table row, "
        f"rows n … S-1 are all {pad}; `mask[t]` is true for t < n. The graph builds each position's window "
        f"(w = {featurizer['window']} neighbours each side) itself. The label is the argmax of the label logits; "
        + ("tags: the argmax of each word's tag logits (positions 0 … n-1)." if decode == "argmax" else
           "tags: the best BIO-consistent sequence of the log-softmax of the tag logits at positions 0 … n-1 "
           "(an I-X tag may start nothing and follow only B-X or I-X; pnlp_bench/mixer/models/heads.py: "
           "bio_viterbi_decode), the decoding the model was evaluated with."),
        "",
        "## Words missing from the table",
        "",
        UNKNOWN_WORDS,
        "",
        recipe,
        "",
        "## Python (onnxruntime and numpy only)",
        "",
        "```python",
        "import json, numpy as np, onnxruntime as ort",
        "meta = json.load(open('featurizer.json')); labels = json.load(open('labels.json'))",
        "table = np.fromfile(meta['table']['features'], dtype=meta['table']['features_dtype']).reshape(meta['table']['shape'])",
        "row = {word: i for i, word in enumerate(meta['words'])}",
        "words = 'set an alarm for 7 am'.split()[: meta['seq_len']]",
        "features = np.full((1, meta['seq_len'], meta['features_per_word']), meta['pad'], dtype=np.int64)",
        "mask = np.zeros((1, meta['seq_len']), dtype=bool); mask[0, : len(words)] = True",
        "for t, word in enumerate(words):",
        "    if word in row:  # a missing word keeps its -1 ids: no buckets",
        "        features[0, t] = table[row[word]]",
        "session = ort.InferenceSession('model.onnx')",
        "feeds = {'features': features, 'mask': mask}" + ("  # plus 'values' from values.bin" if table["values"] else ""),
        "outputs = dict(zip(labels['outputs'], session.run(labels['outputs'], feeds)))",
        "label = labels['labels'][int(outputs[labels['outputs'][0]].argmax(-1)[0])]",
        "```",
        "",
        "With pnlp_bench installed: `OnnxPredictor(folder).predict(words)` (pnlp_bench.mixer.export.onnx) does "
        "the same, decodes as the model was evaluated and projects missing words exactly.",
        "",
    ]
    return "\n".join(lines)


MINHASH_RECIPE = """Exact MinHash features of a new word (pnlp_bench/mixer/projection/minhash.py, rule version 1; \
n = {num_hashes} hashes, seed {seed}, F = {feature_size}):
1. Split the word with WordPiece over the mBERT cased vocabulary (pnlp_bench/assets/vocab/mbert-cased-vocab.txt, \
or the `vocab` file of the config; BERT normalizer without lowercasing or accent stripping, BERT pre-tokenizer, \
at most 100 characters per word).
2. The grams of each piece: a `##` piece's text after `##` with marker byte 0x01, any other piece with 0x00; \
the UTF-8 character trigrams of that text, or the text whole when under 3 characters; a special token `[X]` \
is one gram (0x00 + its bytes). A word WordPiece cannot split (no piece, or `[UNK]`): the trigrams of the \
word itself (the word whole when under 3 characters) with marker 0x02. Each gram is the marker byte followed by the UTF-8 bytes.
3. For each gram g: h1 = xxh64(g, seed), h2 = xxh64(g, seed + 0x9E3779B1) | 1, and h_i = h1 + i*h2 mod 2^64 \
for i = 0 … n-1. The word's fingerprint is the element-wise minimum over all its grams (pieces included).
4. Its n bucket ids are fingerprint_i mod F, in order (an id that occurs twice counts twice).
The vocabulary's digest (the first 16 hex digits of its sha256) is in featurizer.json's projection.cache_key."""
