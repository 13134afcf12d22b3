"""Value checks that pNLP-Mixer's `TrainerConfig` and BiGS's `BiGSTrainerConfig` share: the optimiser's
numbers and where the run goes. Both trainer configs call them from `validate`, so `trainer=smoke` with
`backbone=bigs` is refused for the same values, in the same words, as without it."""

from __future__ import annotations

import math
import re
from typing import Any

from pnlp_bench.core.registry import ConfigError

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(device: str, where: str) -> None:
    # torch.device("tpu") fails only once the model moves, after the data has loaded
    if not DEVICE.fullmatch(device):
        raise ConfigError(f"{where}.device must be auto, cpu, cuda or cuda:N, got {device!r}")


def check_optimiser_and_device(config: Any, where: str) -> None:
    """lr, betas, eps, weight_decay, num_threads and device of either trainer config."""
    if not 0 < config.lr < math.inf:
        raise ConfigError(f"{where}.lr must be > 0, got {config.lr}")
    if len(config.betas) != 2 or not all(0 <= beta < 1 for beta in config.betas):
        raise ConfigError(f"{where}.betas must be two numbers in [0, 1), got {list(config.betas)}")
    if not 0 < config.eps < math.inf:
        raise ConfigError(f"{where}.eps must be > 0, got {config.eps}")
    if not 0 <= config.weight_decay < math.inf:
        raise ConfigError(f"{where}.weight_decay must be >= 0, got {config.weight_decay}")
    if config.num_threads < 0:
        raise ConfigError(f"{where}.num_threads must be >= 0 (0: torch's default), got {config.num_threads}")
    check_device(config.device, where)
