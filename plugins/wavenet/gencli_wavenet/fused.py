"""The fused CPU sampler: the whole Fast-Wavenet generation loop compiled with numba over float32 numpy weights.

One compiled call runs a block of steps for every clip; clips are independent, so ``-n N`` spreads them over the
CPU cores (numba ``prange``) and each clip's step is a handful of small matrix-vector products that stay in cache,
with no Python or tensor-dispatch overhead per sample. Same queue layout and the same inverse-CDF draw as
``sampling.CachedStepper`` / ``sampling.draw``, so given the same uniforms it produces the same samples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numba
import numpy as np
import torch

from gencli_wavenet.model import WaveNetModel

# numba's OpenMP layer and torch's own OpenMP runtime spin-wait against each other on a small machine (measured:
# torch ops 3.5x slower after a numba parallel call); the workqueue layer does not spin. A user's choice wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


@numba.njit(inline="always", fastmath=False, cache=False)
def _relu_dense(x, w, b, out):  # pragma: no cover - compiled
    """out = b + relu(x) @ w, skipping the zeros that relu leaves (about half of them)."""
    for i in range(out.shape[0]):
        out[i] = b[i]
    for j in range(x.shape[0]):
        v = x[j]
        if v > 0.0:
            for i in range(out.shape[0]):
                out[i] += v * w[j, i]


def _loop(u, temperature, step0, prev, cur, queues, offsets, dils, cond,
         tap_prev, tap_cur, causal_bias, w_past, w_cur, w_res, b_res, w_skip, b_skip,
         w_out1, b_out1, w_out2, b_out2, out, logits_out):  # pragma: no cover - compiled
    steps, n = u.shape
    n_layers, r, g2 = w_past.shape
    g = g2 // 2
    s_ch = w_skip.shape[2]
    classes = w_out2.shape[1]
    for b in numba.prange(n):
        h = np.empty(r, np.float32)
        a = np.empty(g2, np.float32)
        z = np.empty(g, np.float32)
        skip = np.empty(s_ch, np.float32)
        hid = np.empty(s_ch, np.float32)
        logits = np.empty(classes, np.float32)
        cdf = np.empty(classes, np.float64)
        p, c = prev[b], cur[b]
        for t in range(steps):
            step = step0 + t
            # causal input conv on one-hot x: two table rows
            for i in range(r):
                h[i] = tap_prev[p, i] + tap_cur[c, i] + causal_bias[i]
            for i in range(s_ch):
                skip[i] = b_skip[i]
            for l in range(n_layers):
                slot = offsets[l] + step % dils[l]
                for j in range(g2):
                    a[j] = cond[b, l, j]
                for i in range(r):
                    xp = queues[b, slot, i]
                    xc = h[i]
                    for j in range(g2):
                        a[j] += xp * w_past[l, i, j] + xc * w_cur[l, i, j]
                for i in range(r):
                    queues[b, slot, i] = h[i]
                for j in range(g):
                    z[j] = math.tanh(a[j]) * (1.0 / (1.0 + math.exp(-a[g + j])))
                for j in range(g):
                    zj = z[j]
                    for i in range(s_ch):
                        skip[i] += zj * w_skip[l, j, i]
                    for i in range(r):
                        h[i] += zj * w_res[l, j, i]
                for i in range(r):
                    h[i] += b_res[l, i]
            _relu_dense(skip, w_out1, b_out1, hid)  # relu -> 1x1
            _relu_dense(hid, w_out2, b_out2, logits)  # relu -> 1x1 -> logits
            if logits_out.shape[0] > 0:
                for i in range(classes):
                    logits_out[t, b, i] = logits[i]
            # inverse-CDF draw in float64, as sampling.draw does
            top = logits[0]
            for i in range(1, classes):
                if logits[i] > top:
                    top = logits[i]
            total = 0.0
            for i in range(classes):
                total += math.exp((np.float64(logits[i]) - np.float64(top)) / temperature)
                cdf[i] = total
            target = u[t, b] * total
            k = 0
            while k < classes - 1 and cdf[k] <= target:
                k += 1
            out[b, t] = k
            p, c = c, k
        prev[b], cur[b] = p, c


# Two compilations of one loop: a single clip gains nothing from threads, and the serial build compiles in
# about half the time (1.8 s against 3.3 s measured here), which is most of `gencli sample wavenet`'s wait.
_serial = numba.njit(parallel=False, fastmath=False, cache=False, nogil=True)(_loop)
_parallel = numba.njit(parallel=True, fastmath=False, cache=False, nogil=True)(_loop)


def _run(u: np.ndarray, *args: Any) -> None:
    (_serial if u.shape[1] == 1 else _parallel)(u, *args)


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


class FusedSampler:
    """Weights laid out input-major (``w[l, in, out]``) so every inner loop runs over contiguous memory."""

    def __init__(self, model: WaveNetModel, speakers: list[int]) -> None:
        layers = list(model.layers)
        spk = torch.tensor(speakers)
        self.dils = np.array([layer.dilation for layer in layers], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.dils)[:-1]]).astype(np.int64)
        w = model.causal.weight
        self.tap_prev, self.tap_cur, self.causal_bias = _np(w[:, :, 0].t()), _np(w[:, :, 1].t()), _np(model.causal.bias)
        self.w_past = np.stack([_np(layer.dilated.weight[:, :, 0].t()) for layer in layers])  # (L, R, 2G)
        self.w_cur = np.stack([_np(layer.dilated.weight[:, :, 1].t()) for layer in layers])
        self.cond = np.stack([_np(layer.speaker.weight[spk] + layer.dilated.bias) for layer in layers], axis=1)
        self.w_res = np.stack([_np(layer.residual.weight[:, :, 0].t()) for layer in layers])  # (L, G, R)
        self.b_res = np.stack([_np(layer.residual.bias) for layer in layers])
        self.w_skip = np.stack([_np(layer.skip.weight[:, :, 0].t()) for layer in layers])  # (L, G, S)
        self.b_skip = np.sum([_np(layer.skip.bias) for layer in layers], axis=0).astype(np.float32)
        self.w_out1, self.b_out1 = _np(model.out1.weight[:, :, 0].t()), _np(model.out1.bias)
        self.w_out2, self.b_out2 = _np(model.out2.weight[:, :, 0].t()), _np(model.out2.bias)
        self.model = model
        self.speakers = spk

    def prime(self, prefix: np.ndarray) -> None:
        """Fill the queues from the prefix (all but its last sample), as ``sampling.prime`` does."""
        from gencli_wavenet.sampling import prime

        kept = prime(self.model, prefix, self.speakers)
        n = prefix.shape[0]
        self.queues = np.concatenate([_np(k.transpose(1, 2)) for k in kept], axis=1).reshape(
            n, int(self.dils.sum()), -1)  # (N, sum d, R)
        self.queues = np.ascontiguousarray(self.queues)
        self.prev = np.ascontiguousarray(prefix[:, -2], dtype=np.int64)
        self.cur = np.ascontiguousarray(prefix[:, -1], dtype=np.int64)
        self.step = 0

    def warm_up(self) -> None:
        """Compile the loop (about 4 s, once per process) on throw-away copies of the state."""
        n = self.prev.shape[0]
        _run(np.full((1, n), 0.5), 1.0, self.step, self.prev.copy(), self.cur.copy(), self.queues.copy(),
             self.offsets, self.dils, self.cond, self.tap_prev, self.tap_cur, self.causal_bias, self.w_past,
             self.w_cur, self.w_res, self.b_res, self.w_skip, self.b_skip, self.w_out1, self.b_out1,
             self.w_out2, self.b_out2, np.empty((n, 1), dtype=np.int64),
             np.empty((0, n, self.w_out2.shape[1]), dtype=np.float32))

    def run_block(self, u: np.ndarray, temperature: float, keep_logits: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
        steps, n = u.shape
        out = np.empty((n, steps), dtype=np.int64)
        logits = np.empty((steps if keep_logits else 0, n, self.w_out2.shape[1]), dtype=np.float32)
        _run(np.ascontiguousarray(u), float(temperature), self.step, self.prev, self.cur, self.queues,
             self.offsets, self.dils, self.cond, self.tap_prev, self.tap_cur, self.causal_bias, self.w_past,
             self.w_cur, self.w_res, self.b_res, self.w_skip, self.b_skip, self.w_out1, self.b_out1,
             self.w_out2, self.b_out2, out, logits)
        self.step += steps
        return out, logits

    def generate(self, prefix: np.ndarray, draws: Iterable[np.ndarray], steps: int, temperature: float,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        self.prime(prefix)
        self.warm_up()
        if progress is not None:
            progress(0, steps)  # generation proper starts now: compilation is not counted in its speed
        blocks, done = [], 0
        for u in draws:
            blocks.append(self.run_block(u, temperature)[0])
            done += blocks[-1].shape[1]
            if progress is not None:
                progress(min(done, steps), steps)
        return np.concatenate(blocks, axis=1)[:, :steps]
