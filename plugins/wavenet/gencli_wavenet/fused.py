"""The fused CPU sampler: the whole Fast-Wavenet generation loop compiled with numba over float32 numpy weights.

One compiled call runs a block of steps for every clip; clips are independent, so ``-n N`` spreads them over the
CPU cores (numba ``prange``) and each clip's step is a handful of small matrix-vector products that stay in cache,
with no Python or tensor-dispatch overhead per sample. Same queue layout and the same inverse-CDF draw as
``sampling.CachedStepper`` / ``sampling.draw``, so given the same uniforms it produces the same samples.

Torch-free: the weights come as numpy arrays named as in the model's state dict, so `gencli sample wavenet` on the
CPU runs without importing torch (``sample_arrays``). The compiled loop is kept on disk (``kernel``), so only the
first command on a machine pays for compiling it.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numba
import numpy as np

from gencli import messages
from gencli.numba_cache import cache_root, compile_cached, writable_cache_folder
from gencli.plugin import Audio, SampleRequest
from gencli_wavenet import arch, audio

# numba's OpenMP layer and torch's own OpenMP runtime spin-wait against each other on a small machine (measured:
# torch ops 3.5x slower after a numba parallel call); the workqueue layer does not spin. A user's choice wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"


@numba.njit(inline="always", fastmath=False)
def _relu_dense(x, w, b, out):  # pragma: no cover - compiled
    """out = b + relu(x) @ w, skipping the zeros that relu leaves (about half of them)."""
    for i in range(out.shape[0]):
        out[i] = b[i]
    for j in range(x.shape[0]):
        v = x[j]
        if v > 0.0:
            for i in range(out.shape[0]):
                out[i] += v * w[j, i]


@numba.njit(inline="always", fastmath=False)
def _clip(b, u, temperature, step0, prev, cur, queues, offsets, dils, cond, tap_prev, tap_cur, causal_bias,
          w_past, w_cur, w_res, b_res, w_skip, b_skip, w_out1, b_out1, w_out2, b_out2, out,
          logits_out):  # pragma: no cover - compiled
    """All steps of the block for clip ``b``."""
    steps = u.shape[0]
    n_layers, r, g2 = w_past.shape
    g = g2 // 2
    s_ch = w_skip.shape[2]
    classes = w_out2.shape[1]
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


# Two kernels, two functions: numba's disk cache keys entries by function and signature, not by the parallel
# option, so one Python function compiled both ways would share (and clobber) one cache entry.
def _serial_loop(u, temperature, step0, prev, cur, queues, offsets, dils, cond, tap_prev, tap_cur, causal_bias,
                 w_past, w_cur, w_res, b_res, w_skip, b_skip, w_out1, b_out1, w_out2, b_out2, out,
                 logits_out):  # pragma: no cover - compiled
    for b in range(u.shape[1]):
        _clip(b, u, temperature, step0, prev, cur, queues, offsets, dils, cond, tap_prev, tap_cur, causal_bias,
              w_past, w_cur, w_res, b_res, w_skip, b_skip, w_out1, b_out1, w_out2, b_out2, out, logits_out)


def _parallel_loop(u, temperature, step0, prev, cur, queues, offsets, dils, cond, tap_prev, tap_cur, causal_bias,
                   w_past, w_cur, w_res, b_res, w_skip, b_skip, w_out1, b_out1, w_out2, b_out2, out,
                   logits_out):  # pragma: no cover - compiled
    for b in numba.prange(u.shape[1]):
        _clip(b, u, temperature, step0, prev, cur, queues, offsets, dils, cond, tap_prev, tap_cur, causal_bias,
              w_past, w_cur, w_res, b_res, w_skip, b_skip, w_out1, b_out1, w_out2, b_out2, out, logits_out)


# ---- the compiled kernels and their disk cache -----------------------------------------------------------------


def cache_key() -> str:
    """What compiled code depends on beyond what numba's own index checks.

    numba's index already keys each entry on its version, the Python version, a sha256 of this file and the CPU
    (name and features). The folder adds llvmlite's and numpy's versions and the interpreter build, and repeats
    the rest, so that one folder holds code for exactly one toolchain, source and CPU, and its ``ready-*``
    markers say exactly whether a command will compile.
    """
    import llvmlite
    import llvmlite.binding as llvm

    cpu = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    features = os.environ.get("NUMBA_CPU_FEATURES") or llvm.get_host_cpu_features().flatten()
    parts = [numba.__version__, llvmlite.__version__, np.__version__, sys.version, platform.machine(), cpu, features,
             hashlib.sha256(Path(__file__).read_bytes()).hexdigest()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


_kernels: dict[bool, Any] = {}
_cache: dict[str, Any] = {}  # "folder": the cache folder in use, or None once it proved unusable


def _cache_folder() -> Path | None:
    """This toolchain's cache folder, made and checked writable; None (after one note) if that fails."""
    if "folder" not in _cache:
        key = cache_key()
        try:
            _cache["folder"] = writable_cache_folder(key)
        except OSError as error:
            _cache["folder"] = None
            messages.note(f"cannot keep the compiled WaveNet sampler in {cache_root() / key} "
                          f"({error.strerror or error}); "
                          "compiling it in this command")
    return _cache["folder"]


def _compiled(loop: Callable[..., None], parallel: bool, folder: Path | None) -> Any:
    return compile_cached(loop, folder, parallel=parallel, fastmath=False, nogil=True)


class Kernel:
    """A compiled loop that loads from the disk cache on its first call, compiles (and saves) when the cache has
    nothing for it, and compiles without the cache when the cache is unwritable or unreadable."""

    def __init__(self, parallel: bool) -> None:
        self.parallel = parallel
        self.loop = _parallel_loop if parallel else _serial_loop
        self.folder = _cache_folder()
        self.dispatcher = _compiled(self.loop, parallel, self.folder)
        self.checked = False

    def __call__(self, *args: Any) -> None:
        if self.checked:
            self.dispatcher(*args)
            return
        marker = None if self.folder is None else self.folder / f"ready-{'parallel' if self.parallel else 'serial'}"
        if marker is not None and not marker.exists():
            messages.note(f"compiling the WaveNet sampler (once; kept in {self.folder.parent})")
        try:
            self.dispatcher(*args)
        except Exception as error:  # a broken cache file (numba unpickles it) or a write that failed mid-way
            if self.folder is None:
                raise
            messages.note(f"the compiled WaveNet sampler in {self.folder} is unusable ({type(error).__name__}); "
                          "compiling it in this command")
            shutil.rmtree(self.folder, ignore_errors=True)  # the next command rebuilds it
            _cache["folder"] = None
            self.folder = None
            self.dispatcher = _compiled(self.loop, self.parallel, None)
            self.dispatcher(*args)
        else:
            if marker is not None:
                try:
                    marker.touch()
                except OSError:
                    pass  # only the note on the next first run depends on it
        self.checked = True


def kernel(parallel: bool) -> Kernel:
    if parallel not in _kernels:
        _skip_numbas_blas_probe()
        _kernels[parallel] = Kernel(parallel)
    return _kernels[parallel]


class _NoScipyLinalg:
    """An import hook that makes ``scipy.linalg`` look absent (see ``_skip_numbas_blas_probe``)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "scipy.linalg" or name.startswith("scipy.linalg."):
            raise ModuleNotFoundError(name)


def _skip_numbas_blas_probe() -> None:
    """Load numba's array-math module without the probe that imports scipy.linalg to see whether np.dot can work.

    The first call of any compiled function, cached or not, loads that module, and the probe costs about 0.3 s
    of CPU (a fifth of a warm `gencli sample wavenet --seconds 1`) for BLAS, which the loop never calls. The
    flag the probe sets is put back, so np.dot in other numba code still works: it imports scipy.linalg then.
    """
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    hook = _NoScipyLinalg()
    sys.meta_path.insert(0, hook)
    try:
        import numba.np.arraymath as arraymath
    except ImportError:
        return
    finally:
        sys.meta_path.remove(hook)
    if hasattr(arraymath, "_HAVE_BLAS"):
        import importlib.util

        arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None


def _run(u: np.ndarray, *args: Any) -> None:
    # A single clip gains nothing from threads, and the serial build compiles in about half the time.
    kernel(parallel=u.shape[1] > 1)(u, *args)


# ---- the sampler ---------------------------------------------------------------------------------------------------


def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


class FusedSampler:
    """Weights laid out input-major (``w[l, in, out]``) so every inner loop runs over contiguous memory.

    ``weights``: numpy arrays named as in ``WaveNetModel.state_dict()`` (see ``arch.tensor_specs``).
    """

    def __init__(self, weights: Mapping[str, np.ndarray], config: Any, speakers: list[int]) -> None:
        dils = arch.dilations(config)
        spk = np.asarray(speakers, dtype=np.int64)
        self.dils = np.array(dils, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.dils)[:-1]]).astype(np.int64)

        def layer(name: str) -> list[np.ndarray]:
            return [np.asarray(weights[f"layers.{index}.{name}"]) for index in range(len(dils))]

        w = np.asarray(weights["causal.weight"])  # (R, 256, 2): tap 0 sees x[t-1], tap 1 sees x[t]
        self.tap_prev, self.tap_cur = _f32(w[:, :, 0].T), _f32(w[:, :, 1].T)  # (256, R)
        self.causal_bias = _f32(weights["causal.bias"])
        self.w_past = _f32(np.stack([d[:, :, 0].T for d in layer("dilated.weight")]))  # (L, R, 2G)
        self.w_cur = _f32(np.stack([d[:, :, 1].T for d in layer("dilated.weight")]))
        self.cond = _f32(np.stack([e[spk] + b for e, b in zip(layer("speaker.weight"), layer("dilated.bias"))],
                                  axis=1))  # (N, L, 2G): speaker embedding plus the dilated conv's bias
        self.w_res = _f32(np.stack([w[:, :, 0].T for w in layer("residual.weight")]))  # (L, G, R)
        self.b_res = _f32(np.stack(layer("residual.bias")))
        self.w_skip = _f32(np.stack([w[:, :, 0].T for w in layer("skip.weight")]))  # (L, G, S)
        self.b_skip = _f32(np.sum(layer("skip.bias"), axis=0))
        self.w_out1, self.b_out1 = _f32(np.asarray(weights["out1.weight"])[:, :, 0].T), _f32(weights["out1.bias"])
        self.w_out2, self.b_out2 = _f32(np.asarray(weights["out2.weight"])[:, :, 0].T), _f32(weights["out2.bias"])

    def prime(self, prefix: np.ndarray, kept: list[np.ndarray] | None = None) -> None:
        """Fill the queues from the prefix (all but its last sample). ``kept``: each layer's last ``dilation``
        inputs (N, R, d), as ``sampling.prime`` computes them; without it the prefix must be constant (silence),
        whose state is one pass of the recurrence with past == current, computed here."""
        if kept is None:
            if not np.all(prefix == prefix[:, :1]):
                raise ValueError("priming from a non-constant prefix needs the layer inputs (sampling.prime)")
            kept = self._constant_state(prefix[:, 0])
        n = prefix.shape[0]
        self.queues = np.ascontiguousarray(
            np.concatenate([np.asarray(k, dtype=np.float32).transpose(0, 2, 1) for k in kept], axis=1)
        ).reshape(n, int(self.dils.sum()), -1)  # (N, sum d, R)
        self.prev = np.ascontiguousarray(prefix[:, -2], dtype=np.int64)
        self.cur = np.ascontiguousarray(prefix[:, -1], dtype=np.int64)
        self.step = 0

    def _constant_state(self, x: np.ndarray) -> list[np.ndarray]:
        h = self.tap_prev[x] + self.tap_cur[x] + self.causal_bias  # (N, R)
        g = self.w_res.shape[1]
        kept = []
        for index, d in enumerate(self.dils):
            kept.append(np.repeat(h[:, :, None], d, axis=2))  # (N, R, d)
            a = h @ (self.w_past[index] + self.w_cur[index]) + self.cond[:, index]  # (N, 2G)
            z = np.tanh(a[:, :g]) * (1.0 / (1.0 + np.exp(-a[:, g:])))
            h = (h + z @ self.w_res[index] + self.b_res[index]).astype(np.float32)
        return kept

    def _args(self) -> tuple[np.ndarray, ...]:
        return (self.offsets, self.dils, self.cond, self.tap_prev, self.tap_cur, self.causal_bias, self.w_past,
                self.w_cur, self.w_res, self.b_res, self.w_skip, self.b_skip, self.w_out1, self.b_out1, self.w_out2,
                self.b_out2)

    def warm_up(self) -> None:
        """Load the compiled loop from the cache, or compile it, on throw-away copies of the state."""
        n = self.prev.shape[0]
        _run(np.full((1, n), 0.5), 1.0, self.step, self.prev.copy(), self.cur.copy(), self.queues.copy(),
             *self._args(), np.empty((n, 1), dtype=np.int64),
             np.empty((0, n, self.w_out2.shape[1]), dtype=np.float32))

    def run_block(self, u: np.ndarray, temperature: float, keep_logits: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
        steps, n = u.shape
        out = np.empty((n, steps), dtype=np.int64)
        logits = np.empty((steps if keep_logits else 0, n, self.w_out2.shape[1]), dtype=np.float32)
        _run(np.ascontiguousarray(u), float(temperature), self.step, self.prev, self.cur, self.queues,
             *self._args(), out, logits)
        self.step += steps
        return out, logits

    def generate(self, prefix: np.ndarray, draws: Iterable[np.ndarray], steps: int, temperature: float,
                 progress: Callable[[int, int], None] | None = None, kept: list[np.ndarray] | None = None
                 ) -> np.ndarray:
        self.prime(prefix, kept)
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


def sample_arrays(weights: Mapping[str, np.ndarray], config: Any, options: Any, request: SampleRequest) -> Audio:
    """`gencli sample wavenet` on the CPU without torch: the same checks, draws and samples as ``sampling.sample``
    with the fused sampler."""
    arch.check_sample_options(options)
    speakers = arch.speaker_ids(config, options.speaker, request.n)
    steps = arch.steps_of(config, options)
    classes = FusedSampler(weights, config, speakers).generate(
        arch.silence_prefix(config, request.n), arch.uniforms(request.seed, request.n, steps), steps,
        options.temperature, lambda done, total: request.progress(done, total, realtime_rate=config.sample_rate))
    return Audio(audio.mu_law_decode(classes), config.sample_rate)
