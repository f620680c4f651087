"""Data-parallel training across processes (torch.distributed): who this process is, its slice of each batch,
and the few collective calls the loop makes. A single process (world 1) never imports torch.distributed.

All ranks share one RNG stream (as Megatron-LM does for data-parallel ranks), so the rank-0 checkpoint restores
every rank; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_spec: str) -> Distributed:
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = device_spec != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


def shard(batch: Any, rank: int, world: int) -> Any:
    """This rank's contiguous slice of a global batch (leading dimension)."""
    if world == 1:
        return batch
    if hasattr(batch, "shape"):
        size = batch.shape[0] // world
        return batch[rank * size:(rank + 1) * size]
    if isinstance(batch, dict):
        return {k: shard(v, rank, world) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(v, rank, world) for v in batch)
    return batch


def agree(nonfinite: bool, interrupted: bool, dist: Distributed) -> tuple[bool, bool]:
    """Every rank must take the same branch: one small all-reduce per step carries both flags."""
    if dist.world == 1:
        return nonfinite, interrupted
    import torch
    import torch.distributed as torch_dist

    flags = torch.tensor([float(nonfinite), float(interrupted)])
    if torch_dist.get_backend() == "nccl":
        flags = flags.cuda()
    torch_dist.all_reduce(flags, op=torch_dist.ReduceOp.MAX)
    nonfinite_any, interrupted_any = flags.tolist()
    return nonfinite_any > 0, interrupted_any > 0


def average_gradients(parameters: list[Any], world: int) -> None:
    """What DDP does during backward, for gradients a plugin set itself: every rank takes the mean."""
    import torch.distributed as torch_dist

    for parameter in parameters:
        torch_dist.all_reduce(parameter.grad)
        parameter.grad /= world


def mean_over_ranks(sums: dict[str, float], dist: Distributed) -> dict[str, float]:
    """Logged figures describe the global batch: average each rank's sums (one all-reduce per log line)."""
    if dist.world == 1 or not sums:
        return sums
    import torch
    import torch.distributed as torch_dist

    keys = list(sums)  # the same order on every rank: each adds its keys in the same sequence
    values = torch.tensor([sums[k] for k in keys], dtype=torch.float64)
    if torch_dist.get_backend() == "nccl":
        values = values.cuda()
    torch_dist.all_reduce(values)
    return {k: v / dist.world for k, v in zip(keys, values.tolist())}
