"""SCROLLS (Shaham et al., EMNLP 2022) tasks an encoder can be fine-tuned on: QuALITY and ContractNLI; and QMSum,
the one SCROLLS task with an offline copy here, as a long-input check.

SCROLLS format: JSON lines ``{"id", "pid", "input", "output"}`` in ``train.jsonl`` and ``validation.jsonl``
(``test.jsonl`` has no outputs). Read from ``data.root`` (plain or gzipped) or, with ``data.download=true``,
from the official archives that Hugging Face's ``tau/scrolls`` serves, fetched through ``datasets``' download
manager. A split may repeat an ``id`` with several reference outputs; the first is kept, the rest counted.

* ``quality`` (multiple choice, 4 options): ``input`` is the question, then one line per option
  ``(A) text`` .. ``(D) text``, then the article; ``output`` is the text of the right option (a bare letter
  ``A``..``D`` or ``(A) ...`` is accepted too). Each option becomes one sequence
  ``[CLS] question option [SEP] article [SEP]``, cut in the article. Metric: accuracy (SCROLLS's EM).
* ``contract_nli`` (3-way classification): ``input`` is the hypothesis, a blank line, then the contract;
  ``output`` is ``Entailment``, ``Contradiction`` or ``Not mentioned``. Pairs (hypothesis, contract), cut in
  the contract. Metric: accuracy (SCROLLS's EM).
* ``qmsum`` (offline only here): the original QMSum release (one meeting per JSON line,
  ``scrolls/qmsum/{train,val}.jsonl[.gz]``), one example per query as SCROLLS builds it: the query, then the
  transcript (``speaker: content`` lines). QMSum is a summarisation task, which an encoder cannot solve;
  to exercise the long-input path with real long text this loader offers two encoder tasks built from the
  release's own fields, **not** SCROLLS metrics:
  ``options.task=answer_choice`` (multiple choice: the reference answer among ``num_choices`` - 1 answers
  to other queries of the same meeting, topped up from other meetings; order fixed by a seeded shuffle per
  query) and ``options.task=query_type`` (classification: the release's general vs specific query lists).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from pnlp_bench.core.files import DataError
from pnlp_bench.bigs.data.text_tasks import TEXT_DATA, TextDataConfig, TextExample, TextTask, existing, read_lines
from pnlp_bench.core.paths import resolve_data_root
from pnlp_bench.core.registry import ConfigError

ARCHIVE_URL = "https://scrolls-tau.s3.us-east-2.amazonaws.com/{name}.zip"
SPLIT_FILES = {"train": "train.jsonl", "eval": "validation.jsonl"}
CONTRACT_NLI_LABELS = ["Entailment", "Contradiction", "Not mentioned"]
QUALITY_LETTERS = "ABCD"
_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s?(.*)$")
_LETTER_OUTPUT = re.compile(r"^\s*\(?([A-Z])\)?(?:\s+.*)?$", re.DOTALL)


@dataclass
class ScrollsOptions:
    pass


@dataclass
class QmsumOptions:
    task: str = "answer_choice"  # answer_choice | query_type
    num_choices: int = 4
    seed: int = 0

    def validate(self, where: str) -> None:
        if self.task not in {"answer_choice", "query_type"}:
            raise ConfigError(f"{where}.task must be answer_choice or query_type, got {self.task!r}")
        if self.num_choices < 2:
            raise ConfigError(f"{where}.num_choices must be >= 2, got {self.num_choices}")


# ----------------------------------------------------------------------------------------------------------
# The SCROLLS format
# ----------------------------------------------------------------------------------------------------------


def read_scrolls_jsonl(path: Path, report: dict) -> list[tuple[str, str, str, int]]:
    """(id, input, output, line number) per distinct id, in file order; repeated ids are counted."""
    rows, seen = [], set()
    for line_number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            uid, text, output = str(record["id"]), record["input"], record["output"]
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}:{line_number}: not a SCROLLS record with id, input and output ({error})") from None
        if uid in seen:
            report["repeated_ids_skipped"] = report.get("repeated_ids_skipped", 0) + 1
            continue
        seen.add(uid)
        rows.append((uid, text, output, line_number))
    return rows


def parse_quality(uid: str, text: str, output: str, where: str) -> TextExample:
    """Question, options (A)-(D) and article out of a SCROLLS QuALITY input; the label from the output."""
    lines = text.split("\n")
    first_option = next((i for i, line in enumerate(lines) if _OPTION_LINE.match(line)), None)
    if first_option is None:
        raise DataError(f"{where}: no '(A) ...' option lines in the input")
    options: list[str] = []
    index = first_option
    while index < len(lines) and (match := _OPTION_LINE.match(lines[index])):
        expected = QUALITY_LETTERS[len(options)] if len(options) < len(QUALITY_LETTERS) else None
        if match.group(1) != expected:
            break
        options.append(match.group(2).strip())
        index += 1
    if len(options) < 2:
        raise DataError(f"{where}: found {len(options)} option line(s); expected (A) .. (D)")
    question = "\n".join(lines[:first_option]).strip()
    article = "\n".join(lines[index:]).strip()
    answer = output.strip()
    if answer in options:
        label = options.index(answer)
    elif (letter := _LETTER_OUTPUT.match(answer)) and letter.group(1) in QUALITY_LETTERS[: len(options)]:
        label = QUALITY_LETTERS.index(letter.group(1))
    else:
        raise DataError(f"{where}: output {answer[:60]!r} is none of the options")
    return TextExample(uid=uid, text=question, text_pair=article, label=label, choices=options)


def parse_contract_nli(uid: str, text: str, output: str, where: str) -> TextExample:
    hypothesis, separator, contract = text.partition("\n\n")
    if not separator or not contract.strip():
        raise DataError(f"{where}: expected 'hypothesis', a blank line, then the contract")
    by_name = {name.lower(): index for index, name in enumerate(CONTRACT_NLI_LABELS)}
    label = by_name.get(output.strip().lower())
    if label is None:
        raise DataError(f"{where}: output {output.strip()!r} is none of {', '.join(CONTRACT_NLI_LABELS)}")
    return TextExample(uid=uid, text=hypothesis.strip(), text_pair=contract.strip(), label=label)


def download_archive(name: str) -> Path:
    """The official SCROLLS archive of `name`, fetched and extracted through `datasets`."""
    import datasets

    url = ARCHIVE_URL.format(name=name)
    try:
        extracted = Path(datasets.DownloadManager().download_and_extract(url))
    except Exception as error:
        raise DataError(f"SCROLLS {name}: cannot download {url} ({type(error).__name__}: {error})") from None
    for candidate in (extracted / name, extracted):
        if existing(candidate / SPLIT_FILES["train"]) is not None:
            return candidate
    raise DataError(f"SCROLLS {name}: {url} has no {SPLIT_FILES['train']} (extracted to {extracted})")


def locate_scrolls(name: str, config: TextDataConfig) -> Path:
    candidates = [Path(config.root).expanduser()] if config.root else resolve_data_root(None, f"scrolls/{name}")
    for candidate in candidates:
        if existing(candidate / SPLIT_FILES["train"]) is not None:
            return candidate
    if config.download:
        return download_archive(name)
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise DataError(
        f"SCROLLS {name}: no {SPLIT_FILES['train']}[.gz] (looked in: {looked}); pass data.download=true when online, "
        "or set data.root to a folder of SCROLLS-format train.jsonl and validation.jsonl"
    )


def scrolls_loader(name: str, kind: str, parse, label_names: list[str]):
    def load(options: ScrollsOptions, config: TextDataConfig) -> TextTask:
        root = locate_scrolls(name, config)
        report: dict = {"source": str(root)}
        splits = {}
        for split, file_name in SPLIT_FILES.items():
            path = existing(root / file_name)
            if path is None:
                raise DataError(f"SCROLLS {name}: {root / file_name}[.gz] missing")
            splits[split] = [
                parse(uid, text, output, f"{path}:{line_number}")
                for uid, text, output, line_number in read_scrolls_jsonl(path, report)
            ]
        return TextTask(kind=kind, splits=splits, label_names=label_names, metric="accuracy", report=report)  # type: ignore[arg-type]

    return load


TEXT_DATA.register("quality", ScrollsOptions)(
    scrolls_loader("quality", "multiple_choice", parse_quality, [f"({letter})" for letter in QUALITY_LETTERS])
)
TEXT_DATA.register("contract_nli", ScrollsOptions)(
    scrolls_loader("contract_nli", "classification", parse_contract_nli, CONTRACT_NLI_LABELS)
)


# ----------------------------------------------------------------------------------------------------------
# QMSum from its original release
# ----------------------------------------------------------------------------------------------------------

QMSUM_FILES = {"train": "train.jsonl", "eval": "val.jsonl"}
QUERY_TYPES = ["general", "specific"]


def qmsum_queries(path: Path) -> list[dict]:
    """One dict per query: uid, meeting, query, answer, type, and the SCROLLS-style transcript."""
    queries = []
    for line_number, line in read_lines(path):
        if not line.strip():
            continue
        try:
            meeting = json.loads(line)
            meeting_id = meeting.get("meeting_id", f"line{line_number}")
            transcript = "\n".join(f"{turn['speaker']}: {turn['content']}" for turn in meeting["meeting_transcripts"])
            lists = [("general", meeting["general_query_list"]), ("specific", meeting["specific_query_list"])]
            for kind, items in lists:
                for item in items:
                    queries.append(
                        {
                            "uid": f"{meeting_id}-{len(queries)}",
                            "meeting": meeting_id,
                            "query": item["query"].strip(),
                            "answer": item["answer"].strip(),
                            "type": kind,
                            "transcript": transcript,
                        }
                    )
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}:{line_number}: not a QMSum meeting record ({error})") from None
    return queries


def answer_choices(queries: list[dict], num_choices: int, seed: int) -> list[TextExample]:
    by_meeting: dict[str, list[str]] = {}
    for query in queries:
        by_meeting.setdefault(query["meeting"], []).append(query["answer"])
    every_answer = list(dict.fromkeys(query["answer"] for query in queries))
    if len(every_answer) < num_choices:
        raise DataError(f"QMSum: {len(every_answer)} distinct answers cannot make {num_choices} choices")
    examples = []
    for query in queries:
        rng = random.Random(f"{seed}:{query['uid']}")
        gold = query["answer"]
        distractors = [answer for answer in dict.fromkeys(by_meeting[query["meeting"]]) if answer != gold]
        rng.shuffle(distractors)
        distractors = distractors[: num_choices - 1]
        while len(distractors) < num_choices - 1:  # a meeting with too few queries: answers from other meetings
            candidate = rng.choice(every_answer)
            if candidate != gold and candidate not in distractors:
                distractors.append(candidate)
        choices = [gold, *distractors]
        rng.shuffle(choices)
        examples.append(
            TextExample(uid=query["uid"], text=query["query"], text_pair=query["transcript"], label=choices.index(gold), choices=choices)
        )
    return examples


@TEXT_DATA.register("qmsum", QmsumOptions)
def load_qmsum(options: QmsumOptions, config: TextDataConfig) -> TextTask:
    candidates = [Path(config.root).expanduser()] if config.root else resolve_data_root(None, "scrolls/qmsum")
    root = next((c for c in candidates if existing(c / QMSUM_FILES["train"]) is not None), None)
    if root is None:
        looked = ", ".join(str(candidate) for candidate in candidates)
        raise DataError(f"QMSum: no train.jsonl[.gz] of the original release (looked in: {looked}); set data.root")
    splits = {}
    for split, file_name in QMSUM_FILES.items():
        path = existing(root / file_name)
        if path is None:
            raise DataError(f"QMSum: {root / file_name}[.gz] missing")
        queries = qmsum_queries(path)
        if options.task == "answer_choice":
            splits[split] = answer_choices(queries, options.num_choices, options.seed)
        else:
            splits[split] = [
                TextExample(uid=q["uid"], text=q["query"], text_pair=q["transcript"], label=QUERY_TYPES.index(q["type"]))
                for q in queries
            ]
    if options.task == "answer_choice":
        return TextTask("multiple_choice", splits, [str(i) for i in range(options.num_choices)], "accuracy", {"source": str(root)})
    return TextTask("classification", splits, QUERY_TYPES, "accuracy", {"source": str(root)})
