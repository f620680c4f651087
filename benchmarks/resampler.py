"""WaveNet's audio resampling: the hand-written windowed-sinc resampler gencli had against soxr (libsoxr's
"HQ" setting), measured in the same run, on speed and on quality.

Quality, in dB, for 44.1 kHz -> 16 kHz (the common case: a CD-rate corpus into a 16 kHz model):
- passband SNR: a 1 kHz and a 5 kHz tone resampled, against the same tones computed exactly at 16 kHz;
- alias rejection: a 10 kHz tone (above the new 8 kHz Nyquist frequency) must vanish; its leftover energy
  relative to the tone's, in dB below.
Speed: seconds per minute of audio, best of --repeats.

    python benchmarks/resampler.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import soxr

from gencli_wavenet.audio import resample
from used_by import machine  # the CPU, cores and library versions, as every benchmark prints them


def windowed_sinc(audio: np.ndarray, source: int, target: int) -> np.ndarray:
    """The resampler gencli used before soxr, kept here as the baseline (Hann-windowed sinc, 16 zero crossings)."""
    audio = np.asarray(audio, dtype=np.float32)
    half_width = 16
    n_out = int(round(len(audio) * target / source))
    cutoff = min(1.0, target / source)
    reach = int(math.ceil(half_width / cutoff))
    taps = np.arange(-reach + 1, reach + 1)
    padded = np.concatenate([np.zeros(reach, np.float32), audio, np.zeros(reach + 1, np.float32)])
    out = np.empty(n_out, dtype=np.float32)
    step = max(1, 2_000_000 // len(taps))
    for start in range(0, n_out, step):
        n = np.arange(start, min(n_out, start + step))
        position = n * (source / target)
        base = np.floor(position).astype(np.int64)
        offset = (base[:, None] + taps[None, :]) - position[:, None]
        window = 0.5 + 0.5 * np.cos(np.pi * np.clip(offset * cutoff / half_width, -1.0, 1.0))
        out[n] = np.sum(padded[base[:, None] + taps[None, :] + reach] * cutoff * np.sinc(cutoff * offset) * window,
                        axis=1)
    return out


def tone(freq: float, rate: int, seconds: float) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate).astype(np.float32)


def db(signal: np.ndarray, noise: np.ndarray) -> float:
    return 10 * math.log10(float(np.sum(signal.astype(np.float64) ** 2)) / max(float(np.sum(noise ** 2)), 1e-30))


def quality(method, source: int = 44100, target: int = 16000) -> tuple[float, float]:
    edge = target // 10  # both methods have start-up and end transients: judged in the middle
    snrs = []
    for freq in (1000.0, 5000.0):
        got = method(tone(freq, source, 2.0), source, target)
        want = tone(freq, target, 2.0)[: len(got)]
        snrs.append(db(want[edge:-edge], got[edge:-edge] - want[edge:-edge]))
    alias_in = tone(10000.0, source, 2.0)
    alias_out = method(alias_in, source, target)
    rejection = db(alias_in, alias_out[edge:-edge] * math.sqrt(source / target))  # per-sample energy, both rates
    return min(snrs), rejection


def seconds_per_minute(method, repeats: int, source: int = 44100, target: int = 16000) -> float:
    audio = np.random.default_rng(0).standard_normal(source * 60).astype(np.float32) * 0.1
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        method(audio, source, target)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# {machine()}, soxr {soxr.__version__}; load {os.getloadavg()[0]:.1f}")
    methods = {"windowed sinc (gencli before)": windowed_sinc, "soxr HQ (gencli_wavenet.audio.resample)": resample}
    print("| resampler | 44.1->16 kHz s per minute | passband SNR dB | alias rejection dB |")
    print("|---|---|---|---|")
    for name, method in methods.items():
        snr, rejection = quality(method)
        print(f"| {name} | {seconds_per_minute(method, args.repeats):.3f} | {snr:.1f} | {rejection:.1f} |")


if __name__ == "__main__":
    main()
