"""`bench export FOLDER --format hf|int8|onnx [--out DIR]`: a trained pNLP-Mixer in a form to ship.

FOLDER is a run folder of `bench run` or a folder an earlier `bench export` wrote (an int8 folder exports
as hf with its dequantized weights, or as onnx). The output goes to FOLDER/export/FORMAT unless --out says
otherwise. What each format holds: pnlp_bench/mixer/export/hf.py (hf; int8 is the same folder with the
int8 weights file of mixer/export/int8.py) and mixer/export/onnx.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pnlp_bench.core.errors import OneLineError
from pnlp_bench.core.registry import ConfigError
from pnlp_bench.mixer.export.hf import folder_words, load_folder
from pnlp_bench.mixer.export.int8 import human_size

FORMATS = ("hf", "int8", "onnx")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench export", description="Export a trained pNLP-Mixer.")
    parser.add_argument("folder", type=Path, help="a run folder of `bench run`, or a `bench export` folder")
    parser.add_argument("--format", required=True, help="hf (safetensors + config), int8 (int8 weights), onnx")
    parser.add_argument("--out", type=Path, help="the folder to write (default: FOLDER/export/FORMAT)")
    parser.add_argument("--words", type=Path,
                        help="onnx: the words of its word table, one per line (default: the training split's words)")
    args = parser.parse_args(list(argv))
    if args.format not in FORMATS:
        raise ConfigError(f"--format: unknown format {args.format!r}; valid: {', '.join(FORMATS)}")
    hub = load_folder(args.folder)
    out = args.out or args.folder / "export" / args.format
    if out.resolve() == args.folder.resolve():
        raise ConfigError(f"--out {out}: the folder exported from; choose another")
    if args.format == "onnx":
        try:
            from pnlp_bench.mixer.export.onnx import export_onnx
        except ModuleNotFoundError as error:
            raise OneLineError(f"--format onnx: {error.name} is not installed here ({error}); hf and int8 work without it") from None

        report = export_onnx(hub, hub.projection, hub.data_config, hub.labels, out, folder_words(hub, args.words))
        print(f"wrote {out}")
        for name in report.get("files", []):
            print(f"  {name}")
        for key, value in report.items():
            if key != "files":
                print(f"  {key}: {value}")
        return 0
    report = hub.write_folder(out, "int8" if args.format == "int8" else "fp32")
    print(f"wrote {out} ({human_size(report['folder_bytes'])} in all)")
    for name, size in report["files"].items():
        print(f"  {name}: {human_size(size)}")
    if args.format == "int8":
        sizes = report["sizes"]
        print(f"int8 weights file: {human_size(sizes['int8_file_bytes'])}; the same weights in fp32: "
              f"{human_size(sizes['fp32_file_bytes'])} ({sizes['ratio']:.2f}x). The paper puts BASE at about 1 MB in 8 bits; "
              f"this model has {hub.config['parameters']['total']:,} parameters "
              f"(int8 {human_size(sizes['int8_weight_bytes'])}, scales {human_size(sizes['scale_bytes'])}, "
              f"fp32 biases and norms {human_size(sizes['fp32_tensor_bytes'])})")
    return 0
