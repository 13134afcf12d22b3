"""One run on several processes (GPUs, or CPU processes with gloo) through `torchrun` and DDP.

`torchrun --nproc_per_node=N -m pnlp_bench.cli run …` starts N copies; each joins the process group from
the environment torchrun sets. Every rank draws the same shuffled order (same seed) and trains on its
strided share of each global batch; DDP averages the gradients, so the global batch stays
`trainer.batch_size`. Every rank evaluates (the weights are identical, so they agree on the best epoch);
only rank 0 writes checkpoints, the run record and the results store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        return rows[self.rank :: self.world_size] if self.enabled else rows


def from_environment(device_type: str) -> Distributed:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=world_size, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
