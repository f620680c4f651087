"""Generated command lines against the real CLI: no internal error, no traceback, nothing that runs on and on.

    python tests/fuzz_cli.py                      # 1,200 command lines, 2 at a time, 20 s each at most
    python tests/fuzz_cli.py --count 300 --workers 4 --seed 7 --timeout 20

Each line is `gencli VERB PLUGIN` (every verb and plugin, and list / info / push / download) with quick,
valid settings (tiny presets, short clips, few AIS steps), then one to three flags given hostile values: integers
of 64 bits and more, NaN and infinities, negative sizes, words for numbers, choices that do not exist, unknown
flags, and --data folders of bad files (a PNG claiming 20,000 x 20,000 pixels, WAV files at 1 Hz, text that is
not text). A run passes when it ends by itself within the time limit, exit 0 or one `gencli: error:` line.

The Hub is kept offline (HF_HUB_OFFLINE=1): Hub ids and retries are another check's subject. The in-suite
version, tests/test_fuzz_cli.py, draws from the same generator in-process, without running the model work.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import typing
import zlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

HOSTILE_INTS = ["99999999999999999999999", str(2**64), str(2**63), str(2**31), "2147483648", "-1", "-2**63",
                str(-(2**63) - 1), "0", "1e99", "1.5", "nan", "inf", "", "abc", "0x10", " 7", "9" * 5000, "٣"]
HOSTILE_FLOATS = ["nan", "-nan", "inf", "-inf", "1e999", "1e99", "-1e99", "-1", "0", "1e-320", "NaN", "",
                  "abc", "1,5", "0x1p3", "infinity", str(2**64)]
HOSTILE_STRINGS = ["", "-", "../../etc/passwd", "x" * 300, "\x07", "{i}", "a b", "--", "é", "org/..", "nul\x01"]

# Valid settings that keep a run to seconds: merged under the fuzzed flags.
QUICK_SAMPLE = {
    "charrnn": ["--length", "20"], "wavenet": ["--seconds", "0.05"], "handwriting": ["--text", "hi", "--length", "60"],
    "rbm": ["--gibbs-steps", "20"], "dbm": ["--gibbs-steps", "20"],
}
QUICK_EVALUATE = {
    "charrnn": [], "wavenet": ["--max-seconds", "0.5", "--rtf-seconds", "0"], "pixelrnn": ["--max-images", "4"],
    "vae": ["--k", "2", "--max-images", "4"], "gan": ["--samples", "50"], "dcgan": ["--samples", "50"],
    "cgan": ["--samples", "50"], "rbm": ["--ais-runs", "2", "--ais-betas", "20"],
    "dbm": ["--ais-runs", "2", "--ais-betas", "20", "--mean-field-steps", "2"], "handwriting": ["--max-lines", "2"],
    "trajgan": ["--samples", "20", "--classifier-steps", "5"], "videogan": ["--clips", "16", "--classifier-steps", "5"],
    "pix2pix": ["--pairs", "20", "--against", "none"],
}
SUFFIX = {"image": ".png", "audio": ".wav", "strokes": ".svg", "text": ".txt", "trajectories": ".svg", "video": ".gif"}


def declarations() -> dict[str, Any]:
    """{plugin name: its declaration} for every installed plugin that loads (torch-free)."""
    from gencli import registry

    plugins = {}
    for name, entry in registry.discover().items():
        try:
            plugins[name] = entry.load()
        except Exception:  # a broken plugin is `gencli list`'s to report
            continue
    return plugins


def hostile_value(flag: Any, rng: random.Random) -> str:
    from gencli.options import _number_type

    kind = _number_type(flag.type)
    if kind is int:
        candidates = HOSTILE_INTS + ([str(int(flag.maximum) + 1)] if flag.maximum is not None else []) + \
            ([str(int(flag.minimum) - 1)] if flag.minimum is not None else [])
    elif kind is float:
        candidates = HOSTILE_FLOATS + ([repr(flag.maximum * 10 + 1)] if flag.maximum is not None else [])
    elif typing.get_origin(flag.type) is typing.Literal:
        candidates = ["nope", "", typing.get_args(flag.type)[0].upper(), "auto "]
    elif flag.type is bool:
        candidates = ["=1"]  # a switch given a value: --json=1
    else:
        candidates = HOSTILE_STRINGS
    return rng.choice(candidates)


def valid_small_value(flag: Any, rng: random.Random) -> str | None:
    """A value inside the bounds that cannot make the run long: the minimum or the default."""
    from gencli.options import _number_type

    if _number_type(flag.type) is None or flag.dest in ("n", "steps"):
        return None
    choices = [v for v in (flag.minimum, flag.default) if v is not None and v is not False]
    return str(rng.choice(choices)) if choices else None


def bad_data(root: Path) -> dict[str, Path]:
    """Folders of hostile files, made once: a decompression-bomb PNG, 1 Hz WAVs, binary 'text'."""
    import numpy as np
    import soundfile

    made = {}
    root.mkdir(parents=True, exist_ok=True)
    bomb = root / "bomb"
    bomb.mkdir(exist_ok=True)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    (bomb / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0,
                                                                                     0, 0))
                                   + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    made["bomb"] = bomb
    slow = root / "onehz"
    slow.mkdir(exist_ok=True)
    for i in range(3):
        soundfile.write(str(slow / f"{i}.wav"), np.zeros(500, dtype=np.float32), 1, subtype="PCM_16")
    made["onehz"] = slow
    junk = root / "junk"
    junk.mkdir(exist_ok=True)
    (junk / "a.png").write_bytes(os.urandom(300))
    (junk / "a.wav").write_bytes(os.urandom(300))
    (junk / "a.txt").write_bytes(os.urandom(300))
    made["junk"] = junk
    made["empty"] = root / "empty"
    made["empty"].mkdir(exist_ok=True)
    return made


def generate(rng: random.Random, plugins: dict[str, Any], workdir: Path, data: dict[str, Path] | None = None,
             index: int = 0) -> list[str]:
    """One command line (argv without `gencli`)."""
    from gencli.options import plugin_flags

    roll = rng.random()
    if roll < 0.04:
        return rng.choice([["list"], ["list", "--json"], ["list", "--jsn"], ["info"], ["info", "nope"],
                           ["info", rng.choice(list(plugins))], ["info", rng.choice(list(plugins)), "--json"]])
    if roll < 0.07:
        return rng.choice([["download", "org/name", "--revision", rng.choice(HOSTILE_STRINGS)],
                           ["push", str(workdir / "no-run"), "org/name"], ["download"], ["push", "--private"]])
    verb = rng.choice(["sample", "evaluate", "train"])
    name = rng.choice(list(plugins)) if rng.random() > 0.02 else "no-such-plugin"
    argv = [verb, name]
    if name not in plugins:
        return argv
    plugin = plugins[name]
    if verb == "sample":
        argv += ["-o", str(workdir / f"out{index}{SUFFIX[plugin.modality]}"), *QUICK_SAMPLE.get(name, [])]
    elif verb == "evaluate":
        argv += QUICK_EVALUATE.get(name, [])
    else:
        argv += ["--preset", "tiny", "--steps", "2", "--out", str(workdir / f"run{index}"), "--save-every", "1"]
    flags = [f for f in plugin_flags(verb, plugin) if not f.hidden and f.dest not in ("output", "out", "config")]
    for _ in range(rng.choice([1, 1, 2, 3])):
        flag = rng.choice(flags)
        label = flag.label
        if flag.dest == "data" and data and rng.random() < 0.6:
            argv += ["--data", str(rng.choice(list(data.values())))]
            continue
        if flag.dest in ("weights", "revision", "device") and rng.random() < 0.5:
            argv += [label, rng.choice(["cuda:99", "tpu", str(workdir / "nothing"), "", "org/name"])]
            continue
        value = valid_small_value(flag, rng) if rng.random() < 0.15 else None
        if value is None:
            value = hostile_value(flag, rng)
        if flag.type is bool:
            argv.append(label + value if value.startswith("=") else label)
        else:
            argv += [label, value]
    if rng.random() < 0.05:
        argv.append(rng.choice(["--no-such-flag", "-Z", "--seed"]))  # unknown, or a value missing at the end
    return argv


# ---- running ----------------------------------------------------------------------------------------------


def classify(code: int | None, stderr: str) -> str:
    if code is None:
        return "over the time limit"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if "internal error" in stderr:
        return "internal error"
    if code == 0:
        return "ok"
    lines = [line for line in stderr.splitlines() if line.startswith("gencli: error:")]
    return "user error" if lines else f"exit {code} without an error line"


def run_one(argv: list[str], cwd: Path, timeout: float) -> tuple[list[str], str, float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "HF_"))}
    env.update({"HF_HUB_OFFLINE": "1", "NO_COLOR": "1", "OMP_NUM_THREADS": "1", "HF_HOME": str(cwd / "hf")})
    started = time.monotonic()
    try:
        process = subprocess.run([sys.executable, "-m", "gencli", *argv], cwd=cwd, env=env, capture_output=True,
                                 timeout=timeout, stdin=subprocess.DEVNULL)
        code, stderr = process.returncode, process.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as expired:
        code, stderr = None, (expired.stderr or b"").decode("utf-8", "replace")
    return argv, classify(code, stderr), time.monotonic() - started, stderr[-600:]


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0)
    options = parser.parse_args(args)
    plugins = declarations()
    root = Path(tempfile.mkdtemp(prefix="gencli-fuzz-"))
    try:
        data = bad_data(root / "data")
        rng = random.Random(options.seed)
        lines = [generate(rng, plugins, root, data, i) for i in range(options.count)]
        outcomes: collections.Counter[str] = collections.Counter()
        per_command: collections.Counter[str] = collections.Counter()
        failures = []
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(options.workers) as pool:
            for done, (argv, outcome, seconds, stderr) in enumerate(
                    pool.map(lambda a: run_one(a, root, options.timeout), lines), 1):
                outcomes[outcome] += 1
                per_command[" ".join(argv[:2])] += 1
                if outcome not in ("ok", "user error"):
                    failures.append((argv, outcome, seconds, stderr))
                    print(f"FAIL [{outcome}, {seconds:.1f} s] gencli {' '.join(map(repr, argv))}\n  {stderr[-300:]}",
                          file=sys.stderr, flush=True)
                if done % 100 == 0:
                    print(f"{done}/{len(lines)} in {time.monotonic() - started:.0f} s: {dict(outcomes)}", flush=True)
        bad = sum(n for k, n in outcomes.items() if k not in ("ok", "user error"))
        print(f"\n{len(lines)} command lines over {len(per_command)} verb/plugin pairs in "
              f"{time.monotonic() - started:.0f} s (seed {options.seed}, {options.timeout:g} s limit):")
        for outcome in ("ok", "user error", "internal error", "traceback", "over the time limit"):
            print(f"  {outcome:<22} {outcomes.get(outcome, 0)}")
        for outcome, count in outcomes.items():
            if outcome not in ("ok", "user error", "internal error", "traceback", "over the time limit"):
                print(f"  {outcome:<22} {count}")
        return 1 if bad else 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
