"""precision=auto: bf16 autocast only where the hardware has it natively, never assumed from the vendor."""

import torch

from pnlp_bench.core import provenance
from pnlp_bench.core import device  # where precision=auto reads the CPU's flags
from pnlp_bench.core.device import autocast_for, resolve_precision

SAPPHIRE_RAPIDS = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
CASCADE_LAKE = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
EPYC_ROME = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse avx2 sha_ni\n"
EPYC_GENOA = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert provenance.native_bf16_cpu(SAPPHIRE_RAPIDS)
    assert provenance.native_bf16_cpu(EPYC_GENOA)
    assert not provenance.native_bf16_cpu(CASCADE_LAKE)  # AVX-512 without its BF16 extension
    assert not provenance.native_bf16_cpu(EPYC_ROME)
    assert not provenance.native_bf16_cpu("")  # no /proc/cpuinfo flags line: fp32


def test_the_device_names_the_vector_unit_so_two_machines_of_one_model_name_differ(monkeypatch):
    monkeypatch.setattr(provenance, "cpu_model", lambda: "AMD EPYC")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(provenance, "native_bf16_cpu", lambda: False)
    rome = provenance.device_name(torch.device("cpu"))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(provenance, "native_bf16_cpu", lambda: True)
    genoa = provenance.device_name(torch.device("cpu"))
    threads = torch.get_num_threads()
    assert rome == f"CPU: AMD EPYC, AVX2 ({threads} threads)" and genoa == f"CPU: AMD EPYC, AVX512 with bf16 ({threads} threads)"


def test_auto_follows_the_cpu_and_explicit_values_win(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "native_bf16_cpu", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("fp32", cpu) == "fp32"
    with autocast_for("auto", cpu):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    monkeypatch.setattr(device, "native_bf16_cpu", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"
    with autocast_for("auto", cpu):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
