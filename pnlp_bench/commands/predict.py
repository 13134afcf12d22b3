"""`bench predict FOLDER [TEXT …]`: a trained pNLP-Mixer's predictions for new text, one JSON line each.

FOLDER is a run folder of `bench run` (its `best.pt` holds the weights, the resolved config and the label
names) or a folder of `bench export` (hf: fp32 safetensors; int8: int8 weights, dequantized when read).
Texts come from the arguments, or one per line from `--file F` (`-` for standard input). Words are split as
the text loaders do (`pnlp_bench.mixer.data.text.words_of`); `--words` takes whitespace-separated words as
they are (MTOP, ATIS).

Output: {"text", "label", "probability"} (the softmax of the label logits at the predicted label),
"top_k" with `--top-k K` ([label, probability], likeliest first) and, for intent/slot heads, "tags" as
[word, tag] pairs. One utterance at a time goes through `MixerPredictor` (MLP-Mixer runs); `--batch-size N`
runs N utterances at a time through the padded model: the same labels and tags, probabilities equal up to
float rounding (mixer/inference.py, `TextPredictor`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from pnlp_bench.mixer.data.text import words_of
from pnlp_bench.mixer.export.hf import load_folder
from pnlp_bench.mixer.inference import TextPredictor, predictor_for
from pnlp_bench.mixer.pipeline import load_trained

__all__ = ["load_trained", "main", "predictor_for"]


def texts_from(args: argparse.Namespace) -> Iterator[str]:
    if args.file is None:
        yield from args.texts
        return
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with stream:
        yield from (line.rstrip("\n") for line in stream if line.strip())  # blank lines are skipped


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench predict", description="Predictions of a trained pNLP-Mixer.")
    parser.add_argument("run_dir", type=Path, help="a run folder of `bench run` (holds best.pt) or a `bench export` folder")
    parser.add_argument("texts", nargs="*", help="texts to label (or --file)")
    parser.add_argument("--file", help="one text per line; - for standard input")
    parser.add_argument("--words", action="store_true", help="split on whitespace only (pre-tokenized text)")
    parser.add_argument("--top-k", type=int, default=0, help="also list the K likeliest labels with their probabilities")
    parser.add_argument("--batch-size", type=int, default=0,
                        help="run N texts at a time through the padded model (default: one at a time)")
    args = parser.parse_args(list(argv))
    if not args.texts and args.file is None:
        parser.error("give texts or --file")
    if args.top_k < 0 or args.batch_size < 0:
        parser.error("--top-k and --batch-size take a number >= 0")
    hub = load_folder(args.run_dir)
    predictor = TextPredictor(hub, hub.projection, hub.data_config.max_length, hub.labels, args.top_k)
    texts = texts_from(args)
    while chunk := list(islice(texts, max(args.batch_size, 1))):
        split = [text.split() if args.words else words_of(text) for text in chunk]
        with_words = [(text, words) for text, words in zip(chunk, split) if words]
        if args.batch_size:
            results = iter(predictor.many([words for _, words in with_words]) if with_words else [])
        else:
            results = (predictor.one(words) for _, words in with_words)
        for text, words in zip(chunk, split):
            line = {"text": text, **next(results)} if words else {"text": text, "error": "no words"}
            print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0
