"""trainer.host_allocator: keeping freed memory changes how fast, never what a run computes."""

import pytest
import torch

from pnlp_bench.core.registry import ConfigError
from pnlp_bench.core import host
from pnlp_bench.mixer.trainer import TrainerConfig


def test_the_option_is_validated():
    with pytest.raises(ConfigError, match="trainer.host_allocator must be auto or system, got 'jemalloc'"):
        TrainerConfig(host_allocator="jemalloc").validate("trainer")


def test_only_cpu_training_with_auto_touches_the_allocator(monkeypatch):
    calls = []
    monkeypatch.setattr(host, "keep_freed_memory", lambda keep=True: calls.append(keep) or True)
    assert host.prepare_host("auto", "cpu") and calls == [True]
    assert not host.prepare_host("system", "cpu") and not host.prepare_host("auto", "cuda") and calls == [True]


@pytest.mark.skipif(host._glibc() is None, reason="not glibc: mallopt's parameters do not apply")
def test_glibc_takes_both_settings_and_numbers_do_not_change():
    torch.manual_seed(0)
    x = torch.randn(512, 4096)  # 8 MB: a block glibc would map and unmap with its defaults
    try:
        assert host.keep_freed_memory(False)
        expected = torch.nn.functional.gelu(x @ x.T[:, :256])
        assert host.keep_freed_memory(True)
        torch.testing.assert_close(torch.nn.functional.gelu(x @ x.T[:, :256]), expected, rtol=0, atol=0)
    finally:
        host.keep_freed_memory(False)


@pytest.mark.skipif(host._glibc() is None, reason="not glibc: mallopt's parameters do not apply")
def test_evaluation_gives_large_blocks_back_and_training_keeps_its_heap_after_it():
    try:
        assert host.keep_freed_memory(True) and host._keeping
        with host.large_blocks_returned():
            assert not host._keeping  # glibc's defaults while the evaluation batches come and go
        assert host._keeping
        host.keep_freed_memory(False)
        with host.large_blocks_returned():  # nothing to switch when the heap is not kept
            assert not host._keeping
        assert not host._keeping
    finally:
        host.keep_freed_memory(False)
