"""The GPU sampler: the cached step (Paine et al. 2016) rewritten so that a block of steps can be captured once
as a CUDA graph and replayed, instead of launching its few hundred tiny kernels one by one at every sample.

A block is graph-capturable when nothing in it depends on the host between steps: here the step counter, the
queues' read/write slots, the last two samples and the uniform draws all live on the device, and the samples
drawn come back to the host once per block. Every tensor is allocated once, so the addresses the graph recorded
stay valid at each replay.

On the CPU the same block runs eagerly (``StaticStepper.run_block``); a test checks that it draws exactly the
samples of ``CachedStepper``, so the only CUDA-specific code is the capture in ``capture``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from gencli.registry import one_line
from gencli_wavenet.model import CLASSES, WaveNetModel
from gencli_wavenet.steps import CachedStepper, draw, layer_step, output_logits, prime

BLOCK = 64  # steps per replay: long enough to amortise the launch, short enough to capture in well under a second


class StaticStepper:
    """The cached sampler's state in fixed device tensors, advanced ``block`` samples per ``run_block`` call.

    Before each call, write that block's uniform draws into ``uniform`` (block, N); after it, ``samples``
    (block, N) holds the classes drawn.
    """

    def __init__(self, model: WaveNetModel, prefix: np.ndarray, speaker: torch.Tensor, temperature: float,
                 block: int = BLOCK, keep_logits: bool = False) -> None:
        device = speaker.device
        self.model, self.temperature, self.block = model, temperature, block
        x = torch.from_numpy(np.ascontiguousarray(prefix, dtype=np.int64)).to(device)
        self.queues = [k.clone() for k in prime(model, prefix, speaker)]  # layer l: (N, R, d) ring buffer
        self.step = torch.zeros(1, dtype=torch.int64, device=device)
        self.dilations = torch.tensor([layer.dilation for layer in model.layers], device=device)
        self.prev, self.cur = x[:, -2].clone(), x[:, -1].clone()  # the next logits predict the sample after cur
        w = model.causal.weight
        self.tap_prev, self.tap_cur = w[:, :, 0].t().contiguous(), w[:, :, 1].t().contiguous()  # (256, R)
        self.cond = [layer.speaker(speaker) + layer.dilated.bias for layer in model.layers]  # (N, 2G)
        self.uniform = torch.zeros(block, len(speaker), dtype=torch.float64, device=device)
        self.samples = torch.zeros(block, len(speaker), dtype=torch.int64, device=device)
        # For checking against the other samplers: each step's logits (block, N, 256).
        self.logits = torch.zeros(block, len(speaker), CLASSES, device=device) if keep_logits else None

    def _logits(self) -> torch.Tensor:
        """One step of the cached recurrence (CachedStepper._advance), with each layer's ring-buffer slot
        (step mod dilation) computed on the device rather than in Python."""
        model = self.model
        slots = torch.remainder(self.step, self.dilations)  # (L,)
        h = self.tap_prev[self.prev] + self.tap_cur[self.cur] + model.causal.bias  # (N, R)
        skip = 0
        for index, (layer, queue, cond) in enumerate(zip(model.layers, self.queues, self.cond)):
            slot = slots[index:index + 1]
            past = queue.index_select(2, slot)[:, :, 0]  # (N, R) input at t - d
            queue.index_copy_(2, slot, h[:, :, None])
            h, skip = layer_step(layer, past, h, cond, skip)
        self.step.add_(1)
        return output_logits(model, skip)  # (N, 256)

    def run_block(self) -> None:
        for k in range(self.block):
            logits = self._logits()
            if self.logits is not None:
                self.logits[k].copy_(logits)
            chosen = draw(logits, self.temperature, self.uniform[k])
            self.samples[k].copy_(chosen)
            self.prev.copy_(self.cur)
            self.cur.copy_(chosen)

    def state(self) -> list[torch.Tensor]:
        """Every tensor a block changes, other than its outputs."""
        return [*self.queues, self.step, self.prev, self.cur]


def capture(stepper: StaticStepper) -> Callable[[], None]:
    """``stepper.run_block`` as a CUDA graph's replay. The block runs once first, on the side stream the capture
    will use (cuBLAS creates its handle and workspace per stream, and must do so outside a capture), then the
    state it changed is put back, so the first replay starts where the stepper stood."""
    saved = [tensor.clone() for tensor in stepper.state()]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        stepper.run_block()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        stepper.run_block()  # recorded, not run
    for tensor, value in zip(stepper.state(), saved):
        tensor.copy_(value)
    return graph.replay


SELF_CHECK_TOLERANCE = 1e-3  # logits; the graph and the cached step do the same arithmetic in the same order


def generate_graphed(model: WaveNetModel, prefix: np.ndarray, speaker: torch.Tensor, draws: Iterator[np.ndarray],
                     steps: int, temperature: float, progress: Callable[[int, int], None] | None = None,
                     capture_block: Callable[[StaticStepper], Callable[[], None]] | None = None) -> np.ndarray | None:
    """(N, steps) classes, block by block: a CUDA graph replay per block on a GPU, the same block eagerly
    elsewhere. A last, partial block runs whole and keeps only the samples asked for.

    A captured graph checks itself on its first block against the cached sampler's steps (same uniforms, logits
    within ``SELF_CHECK_TOLERANCE``, same samples). If the capture fails or disagrees, one warning says so and
    None is returned: the caller then samples with the cached sampler. ``capture_block`` (default: ``capture`` on
    a GPU) lets the CPU tests force both branches.
    """
    checked = capture_block is not None or speaker.device.type == "cuda"
    stepper = StaticStepper(model, prefix, speaker, temperature, keep_logits=checked)
    run_block = stepper.run_block
    if checked:
        try:
            run_block = (capture_block or capture)(stepper)
        except Exception as error:  # a driver or capture limitation: the cached sampler still works
            return _fall_back(f"the CUDA graph could not be captured ({one_line(error)})")
    out = np.empty((len(speaker), steps), dtype=np.int64)
    t = 0
    for chunk in draws:
        for start in range(0, len(chunk), stepper.block):
            rows = chunk[start:start + stepper.block]
            stepper.uniform[:len(rows)].copy_(torch.from_numpy(rows))
            run_block()
            out[:, t:t + len(rows)] = stepper.samples[:len(rows)].t().cpu().numpy()
            if checked and t == 0:
                disagreement = _first_block_disagreement(stepper, model, prefix, speaker, rows, out[:, :len(rows)])
                if disagreement:
                    return _fall_back(f"the CUDA graph's first block disagrees with the cached sampler ({disagreement})")
            t += len(rows)
        if progress is not None:
            progress(t, steps)
    return out


def _first_block_disagreement(stepper: StaticStepper, model: WaveNetModel, prefix: np.ndarray, speaker: torch.Tensor,
                              uniforms: np.ndarray, drawn: np.ndarray) -> str:
    """'' when the block's logits and samples are the cached sampler's, else what differs."""
    reference = CachedStepper(model, prefix, speaker)
    for k, u in enumerate(torch.from_numpy(uniforms).to(speaker.device)):
        gap = float((stepper.logits[k] - reference.logits).abs().max())
        if not gap <= SELF_CHECK_TOLERANCE:  # NaN counts as a disagreement
            return f"logits differ by {gap:.3g} at step {k + 1}"
        chosen = draw(reference.logits, stepper.temperature, u)
        if not np.array_equal(chosen.cpu().numpy(), drawn[:, k]):
            return f"a different sample at step {k + 1}"
        reference.push(chosen)
    return ""


def _fall_back(reason: str) -> None:
    from gencli.messages import warn

    warn(f"{reason}; sampling with the cached sampler instead")
    return None
