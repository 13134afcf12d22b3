"""Long documents for BiGS fine-tuning: Hyperpartisan News Detection (by-article, SemEval-2019 Task 4), as raw
text with its label, so the encoders are compared on a task at 1,024 and 4,096 tokens, not only in a step timer.

Read from `byarticle.jsonl[.gz]` (one article per line: `id`, `hyperpartisan` true/false, `text`), the plain-
text join of the original XML that the offline copy ships (`../shared/data/hyperpartisan/README.md`), under
`data.root` or `hyperpartisan/` in the data folders. Title and text are joined as one document; WordPiece then
cuts it at `data.max_length` tokens (the head of the article is kept).

Splits: the mixer's 10-fold cross-validation (`pnlp_bench/core/splits.py`, the same keyed-hash deal of each
label, so fold k here holds the same articles as `data=hyperpartisan options.fold=k` for pNLP-Mixer): test
fold k, eval fold k+1 (mod 10), train on the other eight. Labels: 0 = not hyperpartisan, 1 = hyperpartisan;
metrics: F1 of the hyperpartisan class (the papers' metric) and accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig, TextExample, TextTask, existing, read_lines
from pnlp_bench.core.files import DataError
from pnlp_bench.core.paths import resolve_data_root
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core.splits import hash_order, stratified_folds

FILE = "byarticle.jsonl"
LABELS = ["not_hyperpartisan", "hyperpartisan"]
FOLDS = 10


@dataclass
class HyperpartisanTextOptions:
    fold: int = 0  # test fold k, eval fold k+1 (mod 10), train the other eight
    split_seed: int = 0

    def validate(self, where: str) -> None:
        if not 0 <= self.fold < FOLDS:
            raise ConfigError(f"{where}.fold must be 0..{FOLDS - 1}, got {self.fold}")


def read_articles(path: Path) -> list[TextExample]:
    examples, seen = [], set()
    for line_number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            article = json.loads(line)
            uid, flag, text = str(article["id"]), article["hyperpartisan"], article["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DataError(f"{path}:{line_number}: expected a JSON object with id, hyperpartisan and text ({error})") from None
        if not isinstance(flag, bool):
            raise DataError(f"{path}:{line_number}: article {uid}: hyperpartisan must be true or false, got {flag!r}")
        if uid in seen:
            raise DataError(f"{path}:{line_number}: article {uid} appears twice")
        document = " ".join(part.strip() for part in (article.get("title") or "", text) if part and part.strip())
        if not document:
            raise DataError(f"{path}:{line_number}: article {uid} is empty")
        seen.add(uid)
        examples.append(TextExample(uid=uid, text=" ".join(document.split()), label=int(flag)))
    if not examples:
        raise DataError(f"{path}: no articles")
    return examples


@TEXT_DATA.register("hyperpartisan_text", HyperpartisanTextOptions)
def load_hyperpartisan_text(options: HyperpartisanTextOptions, config: TextDataConfig) -> TextTask:
    candidates = [Path(config.root).expanduser()] if config.root else resolve_data_root(None, "hyperpartisan")
    path = next((found for c in candidates if (found := existing(c / FILE)) is not None), None)
    if path is None:
        looked = ", ".join(str(candidate) for candidate in candidates)
        raise DataError(f"hyperpartisan_text: no {FILE}[.gz] (looked in: {looked}); set data.root to its folder")
    examples = read_articles(path)
    folds = stratified_folds(examples, FOLDS, options.split_seed)
    test, evaluation = folds[options.fold], folds[(options.fold + 1) % FOLDS]
    held_out = {example.uid for example in test + evaluation}
    train = hash_order([example for example in examples if example.uid not in held_out], options.split_seed)
    report = {"file": str(path), "articles": len(examples), "fold": options.fold,
              "hyperpartisan": sum(example.label == 1 for example in examples)}
    return TextTask(kind="classification", splits={"train": train, "eval": evaluation, "test": test},
                    label_names=LABELS, metric="binary_f1", report=report)
