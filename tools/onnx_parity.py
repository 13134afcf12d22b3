"""A trained run exported to ONNX, then onnxruntime against torch on real test utterances.

    python tools/onnx_parity.py RUN_DIR [--out FOLDER] [--utterances 200] [--languages en]

The word table holds the training split's words (what `bench export` ships); the first N test utterances
of the run's data set are compared, so some of their words are outside the table: the parity is measured
with those projected exactly (unknown='project'), and the agreement of unknown='empty' (a runtime without
pnlp_bench) with the torch predictions beside it. Prints one JSON object: the export's files, sizes,
opset and exporter, the largest logit differences and the label and tag agreement.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from pnlp_bench.mixer import pipeline
from pnlp_bench.mixer.data.base import DataConfig
from pnlp_bench.mixer.data.features import kept_words
from pnlp_bench.mixer.data.loaders import load_data
from pnlp_bench.mixer.export.onnx import OnnxPredictor, export_onnx, parity
from pnlp_bench.mixer.inference import MixerPredictor


def renamed_keys_checkpoint(loader):
    """Runs older than the data.max_words -> data.max_length rename (3bfb53a) hold the old key in their
    checkpoint's config, which `load_trained` reads as it is; rename it on the way in."""

    def load(*args, **kwargs):
        checkpoint = loader(*args, **kwargs)
        data = checkpoint.get("config", {}).get("data", {})
        if "max_words" in data and "max_length" not in data:
            data["max_length"] = data.pop("max_words")
        return checkpoint

    return load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, help="the export folder (default: RUN_DIR/../<name>-onnx)")
    parser.add_argument("--utterances", type=int, default=200, help="the first N test utterances")
    parser.add_argument("--languages", nargs="+", default=["en"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    pipeline.load_checkpoint = renamed_keys_checkpoint(pipeline.load_checkpoint)
    model, projection, data_config, labels = pipeline.load_trained(args.run_dir)
    loaded = load_data(DataConfig(name=data_config.name, languages=list(args.languages)))
    words = list(dict.fromkeys(word for example in loaded.splits["train"] for word in kept_words(example, data_config.max_length)))
    out = args.out or args.run_dir.parent / f"{args.run_dir.name}-onnx"
    report = export_onnx(model, projection, data_config, labels, out, words)
    utterances = [example.words[: data_config.max_length] for example in loaded.splits["test"][: args.utterances]]
    table = set(words)
    empty, torch_predictor = OnnxPredictor(out, unknown="empty"), MixerPredictor(model, projection, data_config.max_length)
    labels_agree = tags_agree = 0
    for words_of_row in utterances:
        got, expected = empty.predict(words_of_row), torch_predictor.predict(words_of_row)
        labels_agree += int(torch.equal(got["label"], expected["label"]))
        tags_agree += int((got["tags"] == expected["tags"]).sum()) if "tags" in got else 0
    total_words = sum(len(words_of_row) for words_of_row in utterances)
    print(json.dumps({
        "run": str(args.run_dir), "export": {key: report[key] for key in ("folder", "sizes", "opset", "exporter", "words")},
        "test_utterances": f"the first {len(utterances)} of the {data_config.name} test split ({', '.join(args.languages)})",
        "parity_unknown_projected": parity(model, projection, out, utterances),
        "words_outside_the_table": [sum(word not in table for row in utterances for word in row), total_words],
        "unknown_empty_against_torch": {"label_agreement": labels_agree / len(utterances),
                                        "tag_agreement": tags_agree / total_words if labels.tags else None},
    }, indent=1))


if __name__ == "__main__":
    main()
