"""`bench predict RUN_DIR [TEXT …]`: a trained pNLP-Mixer's predictions for new text, one JSON line each.

The run folder's `best.pt` holds the weights, the resolved config and the label names, so nothing else is
needed: the projection is rebuilt from the config (same vocabulary, hashes and window). Texts come from the
arguments, or one per line from `--file F` (`-` for standard input). Words are split as the text loaders do
(`pnlp_bench.mixer.data.text.words_of`); `--words` takes whitespace-separated words as they are (MTOP, ATIS).

MLP-Mixer runs go through `MixerPredictor` (one utterance at a time, cached word vectors); other backbones
run the padded model. Output: {"text", "label"} and, for intent/slot heads, "tags" as [word, tag] pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from pnlp_bench.mixer.data.features import LabelSpace
from pnlp_bench.mixer.data.text import words_of
from pnlp_bench.mixer.inference import MixerPredictor, padded_inputs
from pnlp_bench.mixer.models.mixer import Mixer
from pnlp_bench.mixer.models.pnlp import PNLPModel
from pnlp_bench.mixer.pipeline import load_trained
from pnlp_bench.mixer.projection.base import Projection


def predictor_for(model: PNLPModel, projection: Projection, seq_len: int) -> Callable[[list[str]], dict[str, torch.Tensor]]:
    if isinstance(model.backbone, Mixer):
        return MixerPredictor(model, projection, seq_len).predict

    def padded(words: list[str]) -> dict[str, torch.Tensor]:
        features, mask, values = padded_inputs(projection, words, seq_len)
        with torch.inference_mode():
            outputs = model(features, mask, values)
        return model.head.predict(outputs, mask)

    return padded


def texts_from(args: argparse.Namespace) -> Iterator[str]:
    if args.file is None:
        yield from args.texts
        return
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with stream:
        yield from (line.rstrip("\n") for line in stream if line.strip())  # blank lines are skipped


def prediction(text: str, words: list[str], predicted: dict[str, torch.Tensor], labels: LabelSpace) -> dict[str, Any]:
    result: dict[str, Any] = {"text": text, "label": labels.labels[int(predicted["label"][0])]}
    if "tags" in predicted and labels.tags:
        tags = predicted["tags"][0].tolist()
        result["tags"] = [[word, labels.tags[tag]] for word, tag in zip(words, tags)]
    return result


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench predict", description="Predictions of a trained pNLP-Mixer run.")
    parser.add_argument("run_dir", type=Path, help="a run folder of `bench run` (holds best.pt)")
    parser.add_argument("texts", nargs="*", help="texts to label (or --file)")
    parser.add_argument("--file", help="one text per line; - for standard input")
    parser.add_argument("--words", action="store_true", help="split on whitespace only (pre-tokenized text)")
    args = parser.parse_args(list(argv))
    if not args.texts and args.file is None:
        parser.error("give texts or --file")
    model, projection, data_config, labels = load_trained(args.run_dir)
    predict = predictor_for(model, projection, data_config.max_length)
    for text in texts_from(args):
        words = text.split() if args.words else words_of(text)
        if not words:
            print(json.dumps({"text": text, "error": "no words"}, ensure_ascii=False))
            continue
        words = words[: data_config.max_length]
        print(json.dumps(prediction(text, words, predict(words), labels), ensure_ascii=False), flush=True)
    return 0
