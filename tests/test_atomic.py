"""The shared foundations in pnlp_bench/core: files written whole or not at all, damaged checkpoints said in
one line, one run per folder, history.jsonl kept in step with the checkpoint a resume starts from."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pnlp_bench.core import store
from pnlp_bench.core import atomic
from pnlp_bench.core.atomic import WriteError, append_line, save_torch_atomic, write_json_atomic, write_text_atomic
from pnlp_bench.core.checkpoint import DamagedCheckpointError, load_checkpoint
from pnlp_bench.core.run_lock import RunFolderBusy, hold_run_folder
from pnlp_bench.core.run_log import ProgressLog, read_history

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pnlp_bench"


def leftovers(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.endswith(".tmp")]


class FillingDisk:
    """A file handle that takes `room` bytes, then answers ENOSPC, as a full disk does mid-write."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        data = bytes(data)
        self.handle.write(data[: self.room])
        if len(data) > self.room:
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return len(data)

    def __getattr__(self, name):  # flush, fileno, tell, close: the real file's
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()


def disk_filling_after(monkeypatch, room: int) -> None:
    """Every file core/atomic.py opens fills up after `room` bytes."""
    monkeypatch.setattr(atomic, "open", lambda *args, **kwargs: FillingDisk(open(*args, **kwargs), room), raising=False)


@pytest.mark.parametrize(
    "write",
    [
        lambda path: write_text_atomic(path, "new " * 10_000),
        lambda path: write_json_atomic(path, {"new": list(range(5_000))}),
        lambda path: save_torch_atomic(path, {"weights": torch.zeros(10_000)}),
    ],
    ids=["text", "json", "torch"],
)
def test_a_full_disk_leaves_the_old_file_no_temporary_and_one_line_naming_it(tmp_path, monkeypatch, write):
    target = tmp_path / "result.bin"
    target.write_text("old")
    disk_filling_after(monkeypatch, room=100)  # a partial temporary file exists when the error comes
    with pytest.raises(WriteError) as caught:
        write(target)
    assert str(caught.value) == f"cannot write {target}: No space left on device"
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == [] and sorted(tmp_path.iterdir()) == [target]


def test_torch_save_failing_with_enospc_is_reported_with_the_path(tmp_path, monkeypatch):
    def full(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(WriteError, match=re.escape(f"cannot write {tmp_path / 'last.pt'}: No space left on device")):
        save_torch_atomic(tmp_path / "last.pt", {"x": 1})
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_mid_write_removes_the_temporary_and_stays_an_interrupt(tmp_path, monkeypatch):
    def interrupted(obj, handle, *args, **kwargs):
        handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_torch_atomic(tmp_path / "best.pt", {"x": 1})
    assert list(tmp_path.iterdir()) == []


def test_written_files_read_back_identically(tmp_path):
    write_text_atomic(tmp_path / "a.md", "ü\r\nline\n")
    assert (tmp_path / "a.md").read_bytes() == "ü\r\nline\n".encode()
    write_json_atomic(tmp_path / "a.json", {"b": [1, 2]})
    assert (tmp_path / "a.json").read_text() == json.dumps({"b": [1, 2]}, indent=1)
    save_torch_atomic(tmp_path / "a.pt", {"t": torch.arange(3)})
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["t"], torch.arange(3))
    assert leftovers(tmp_path) == []


def test_a_failed_append_is_cut_off_so_the_next_record_is_not_glued_to_it(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    append_line(path, json.dumps({"n": 1}))
    with monkeypatch.context() as patched:
        disk_filling_after(patched, room=5)
        with pytest.raises(WriteError, match=f"cannot write {re.escape(str(path))}: No space left on device"):
            append_line(path, json.dumps({"n": 2, "padding": "x" * 100}))
    assert path.read_text() == '{"n": 1}\n'
    append_line(path, json.dumps({"n": 3}))
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [1, 3]


def test_the_store_on_a_full_disk_raises_one_line_and_keeps_every_record(tmp_path, monkeypatch):
    store.append(tmp_path, {"status": "finished", "config_hash": "a", "code_version": "t"})
    with monkeypatch.context() as patched:
        disk_filling_after(patched, room=10)
        with pytest.raises(WriteError, match="records.jsonl: No space left on device"):
            store.append(tmp_path, {"status": "finished", "config_hash": "b", "code_version": "t"})
    store.append(tmp_path, {"status": "finished", "config_hash": "c", "code_version": "t"})
    assert [record["config_hash"] for record in store.records(tmp_path)] == ["a", "c"]


def test_no_module_writes_files_its_own_way():
    """Every temp-then-rename and every torch.save goes through core/atomic.py (one writer, one failure mode)."""
    patterns = re.compile(r"torch\.save\(|os\.replace\(|\.tmp\b|NamedTemporaryFile|mkstemp|partial\.replace\(")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path != PACKAGE / "core" / "atomic.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if patterns.search(line)
    ]
    assert offenders == []




@pytest.mark.parametrize("cut", [0, 1, 100, 0.5, -50], ids=["empty", "1 byte", "100 bytes", "half", "tail cut"])
def test_a_truncated_checkpoint_is_one_damaged_line_naming_the_file(tmp_path, cut):
    whole = tmp_path / "whole.pt"
    torch.save({"model": {"w": torch.randn(4000)}, "epoch": 3}, whole)
    data = whole.read_bytes()
    damaged = tmp_path / "best.pt"
    damaged.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut if cut >= 0 else len(data) + cut])
    with pytest.raises(DamagedCheckpointError) as caught:
        load_checkpoint(damaged, "do this")
    message = str(caught.value)
    assert message.startswith(f"{damaged} is damaged") and message.endswith("; do this") and "\n" not in message
    assert load_checkpoint(whole, "unused")["epoch"] == 3


def test_a_missing_checkpoint_is_not_called_damaged(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt", "unused")


HOLDER = """
import sys
from pathlib import Path
from pnlp_bench.core.run_lock import hold_run_folder
with hold_run_folder(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_folder_held_by_another_process_is_refused_naming_the_holder(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderBusy, match=f"{re.escape(str(tmp_path))} is in use by pid {holder.pid} on "):
            with hold_run_folder(tmp_path):
                pass
    finally:
        holder.kill()  # SIGKILL: the OS drops its lock, and its holder file stays behind, stale
        holder.wait()
    with hold_run_folder(tmp_path):  # a dead holder blocks no one
        assert (tmp_path / ".run.holder").read_text().startswith(f"pid {os.getpid()} ")


def test_the_folder_is_released_when_the_run_fails(tmp_path):
    with pytest.raises(ValueError):
        with hold_run_folder(tmp_path):
            raise ValueError("the run failed")
    with hold_run_folder(tmp_path):
        pass
    assert not (tmp_path / ".run.holder").exists()


def test_history_follows_the_checkpoint_a_resume_starts_from(tmp_path):
    log = ProgressLog(tmp_path, total=4)
    for epoch in (1, 2, 3):
        log.record({"epoch": epoch, "train_loss": 1.0 / epoch, "checkpoint_seconds": 0.1}, "loss")
    with open(tmp_path / "history.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "train_l')  # a writer killed mid-line
    assert [row["epoch"] for row in read_history(tmp_path / "history.jsonl")] == [1, 2, 3]
    # The checkpoint a resume finds was saved after epoch 2, before its checkpoint_seconds were known.
    resumed = ProgressLog(tmp_path, total=4).start([{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}])
    assert resumed == read_history(tmp_path / "history.jsonl")
    assert [(row["epoch"], row["checkpoint_seconds"]) for row in resumed] == [(1, 0.1), (2, 0.1)]
    ProgressLog(tmp_path, total=4).start([])  # a fresh start: an earlier training's lines do not stay
    assert (tmp_path / "history.jsonl").read_text() == ""


def test_each_epoch_logs_one_plain_line_with_its_eta(tmp_path, caplog):
    log = ProgressLog(tmp_path, total=10)
    log.start([])
    with caplog.at_level("INFO", logger="pnlp_bench.train"):
        log.record({"epoch": 1, "train_loss": 2.0}, "train loss 2.0000")
    (line,) = [record.getMessage() for record in caplog.records if record.name == "pnlp_bench.train"]
    assert re.fullmatch(r"epoch 1/10: train loss 2\.0000, elapsed \d+:\d\d:\d\d, ETA \d+:\d\d:\d\d", line)
    assert ProgressLog(None, total=10).start([{"epoch": 1}]) == [{"epoch": 1}]  # another rank: writes nothing
