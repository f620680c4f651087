"""What a user waits for: the whole-command wall time of the README's examples and of the three uses the project
exists for (one second of WaveNet audio, `gencli train pixelrnn` up to its first ETA, charrnn in a pipe), cold and
warm, with where the time goes.

    .venv/bin/python benchmarks/used_by.py [--repeat 3] [--baseline-ref b3e0540] [--all] [--only wavenet]

Each command runs as a user runs it (a fresh interpreter, bundled weights, output to a file or a pipe):

* cold: the first run with an empty compiled-code cache (a fresh XDG_CACHE_HOME whose data caches, such as the
  spoken corpus, are links to yours; the OS file cache is not dropped);
* warm: the median (and minimum) of ``--repeat`` further runs with that cache, and the median CPU time (user +
  system, all the command's threads) of those runs: on a loaded machine the wall time grows with the load, the
  CPU time much less, so it is the better guide to what an idle machine would show.

Variants, interleaved run by run so that the machine's load falls on all of them alike:

* ``after``: this working tree;
* ``torch``: the same with GENCLI_SAMPLE_TORCH=1 (the torch path of the sample commands that have a torch-free one);
* ``before``: the tree of ``--baseline-ref`` (git archive into a temporary folder, run with this venv through
  PYTHONPATH), when given.

The breakdown comes from one more warm run through a small driver that times gencli's own functions: start-up
(interpreter and CLI until ``run_sample``), imports (torch, numba, numpy, safetensors, soundfile, PIL, scipy,
rich, first loaded after that), weights (locate, check, load), set-up (from the end of loading to the plugin's
first progress call: numba's compile or cache load), generation, writing, and other (the interpreter's start and
exit: that run's wall time less the rest). For text, which streams, generation happens while writing and is
counted there. The machine's CPU, cores and load average are printed first; on a
shared machine read the figures as rough.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numba", "numpy", "safetensors", "soundfile", "PIL", "scipy", "rich", "llvmlite")


@dataclass
class Use:
    name: str
    args: list[str]
    pipe: bool = False  # stdout into a pipe that a reader drains (as `| wc -c` or `| less` do)
    slow: bool = False  # only with --all
    until: str | None = None  # stop the command when stderr shows this text (the first ETA of a training run)
    outputs: list[str] = field(default_factory=list)


USES = [
    # the three uses of issue 13
    Use("wavenet 1 s", ["sample", "wavenet", "--seconds", "1", "-o", "out.wav"]),
    Use("train pixelrnn (first ETA)", ["train", "pixelrnn", "--out", "run-pixelrnn"], until="eta "),
    Use("charrnn | wc -c", ["sample", "charrnn", "--length", "200"], pipe=True),
    # the README's examples that run offline in seconds to minutes
    Use("--help", ["--help"], pipe=True),
    Use("list", ["list"], pipe=True),
    Use("info charrnn", ["info", "charrnn"], pipe=True),
    Use("charrnn --prime | less", ["sample", "charrnn", "--prime", "def ", "--length", "400", "--temperature", "0.7"],
        pipe=True),
    Use("charrnn -n 3 -o", ["sample", "charrnn", "-n", "3", "--seed", "1", "-o", "samples.txt"]),
    Use("wavenet -n 4 clip{i}", ["sample", "wavenet", "-n", "4", "--speaker", "us-f", "-t", "0.9", "-o",
                                 "clip{i}.wav"]),
    Use("handwriting svg", ["sample", "handwriting", "--text", "hello world", "-o", "hello.svg"]),
    Use("cgan --label all", ["sample", "cgan", "--label", "all", "-o", "digits.png"]),
    Use("dcgan --neighbours", ["sample", "dcgan", "-n", "16", "--neighbours", "3", "-o", "check.png"]),
    Use("rbm --filters", ["sample", "rbm", "--filters", "-o", "features.png"]),
    Use("pixelrnn -n 16", ["sample", "pixelrnn", "-n", "16", "-o", "grid.png"], slow=True),
    Use("evaluate charrnn --json", ["evaluate", "charrnn", "--json"], pipe=True, slow=True),
    Use("evaluate wavenet --json", ["evaluate", "wavenet", "--json"], pipe=True, slow=True),
]


# ---- the driver: gencli in this process, with its phases timed ------------------------------------------------

DRIVER = r'''
import builtins, json, os, sys, time
T0 = time.perf_counter()
HEAVY = set(sys.argv[1].split(","))
marks, imports, depth = {}, [], [0]
real_import = builtins.__import__

def timed_import(name, *args, **kwargs):
    top = name.split(".")[0]
    if top not in HEAVY or top in sys.modules or depth[0]:
        return real_import(name, *args, **kwargs)
    depth[0] += 1
    start = time.perf_counter()
    try:
        return real_import(name, *args, **kwargs)
    finally:
        depth[0] -= 1
        imports.append((start, time.perf_counter()))

builtins.__import__ = timed_import

def mark(key):
    marks.setdefault(key, time.perf_counter())

from gencli import sampling, writers
real_run, real_write, real_init, real_update = (sampling.run_sample, writers.write, sampling.SampleProgress.__init__,
                                                sampling.SampleProgress.update)
def run_sample(*a, **k):
    mark("run_sample")
    return real_run(*a, **k)
def write(*a, **k):
    mark("write_start")
    try:
        return real_write(*a, **k)
    finally:
        mark("write_end")
def init(self, *a, **k):
    mark("loaded")
    real_init(self, *a, **k)
def update(self, done, total, **k):
    if done == 0:
        mark("generating")
    real_update(self, done, total, **k)
sampling.run_sample, writers.write = run_sample, write
sampling.SampleProgress.__init__, sampling.SampleProgress.update = init, update

from gencli.cli import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exit_:
    code = exit_.code if isinstance(exit_.code, int) else 0
finally:
    mark("end")
    with open(os.environ["USED_BY_REPORT"], "w") as f:
        json.dump({"t0": T0, "marks": marks, "imports": imports, "code": code}, f)
'''


def breakdown(report: dict) -> dict[str, float]:
    """Seconds per phase, each less the heavy imports inside it; imports on their own."""
    m, imports = report["marks"], report["imports"]
    if "run_sample" not in m:
        return {}
    end = m["end"]
    points = [("start-up", report["t0"], m["run_sample"]),
              ("weights", m["run_sample"], m.get("loaded", end)),
              ("set-up", m.get("loaded", end), m.get("generating", m.get("write_start", end))),
              ("generation", m.get("generating", m.get("write_start", end)), m.get("write_start", end)),
              ("writing", m.get("write_start", end), m.get("write_end", end))]

    def overlap(a: float, b: float) -> float:
        return sum(max(0.0, min(b, e) - max(a, s)) for s, e in imports)

    phases = {name: max(0.0, (b - a) - (overlap(a, b) if name != "start-up" else 0.0)) for name, a, b in points}
    phases["imports"] = overlap(m["run_sample"], end)
    return phases


# ---- running commands ---------------------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    pythonpath: str | None
    env: dict[str, str]
    cache: Path


def environment(variant: Variant) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "NUMBA_CACHE"))}
    env.update({"NO_COLOR": "1", "HF_HUB_OFFLINE": "1", "XDG_CACHE_HOME": str(variant.cache), **variant.env})
    if variant.pythonpath:
        env["PYTHONPATH"] = variant.pythonpath
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(use: Use, variant: Variant, workdir: Path, driver: Path | None = None) -> tuple[float, dict]:
    """One run of ``use``: (wall seconds, breakdown when through the driver, with the CPU seconds as "cpu")."""
    for stale in workdir.glob("run-*"):
        shutil.rmtree(stale, ignore_errors=True)
    env = environment(variant)
    report_path = workdir / "report.json"
    if driver is None:
        argv = [sys.executable, "-m", "gencli", *use.args]
    else:
        env["USED_BY_REPORT"] = str(report_path)
        argv = [sys.executable, str(driver), ",".join(HEAVY), *use.args]
    start, cpu = time.perf_counter(), children_cpu()
    stdout = subprocess.PIPE if use.pipe else subprocess.DEVNULL
    process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=stdout, stderr=subprocess.PIPE)
    if use.until:
        # read stderr line by line until the text appears, then stop the run (Ctrl-C, as a user would)
        assert process.stderr is not None
        for raw in iter(process.stderr.readline, b""):
            if use.until in raw.decode("utf-8", "replace"):
                break
        wall = time.perf_counter() - start
        process.send_signal(2)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return wall, {"cpu": children_cpu() - cpu}
    out, err = process.communicate()  # drains the pipe as a reader would
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{variant.name}: gencli {shlex.join(use.args)} failed ({process.returncode}): "
                           f"{err.decode('utf-8', 'replace')[-500:]}")
    phases = breakdown(json.loads(report_path.read_text())) if driver is not None else {}
    if phases:  # the interpreter's own start and exit, and whatever the phases above do not cover
        phases["other"] = max(0.0, wall - sum(phases.values()))
    return wall, {**phases, "cpu": children_cpu() - cpu}


def has_numpy_sampler(use: Use) -> bool:
    """Whether GENCLI_SAMPLE_TORCH=1 changes anything for this command (a sample with a torch-free path)."""
    if use.args[0] != "sample":
        return False
    from gencli import registry

    return getattr(registry.load(use.args[1]), "numpy_sampler", None) is not None


def fresh_cache(root: Path, name: str) -> Path:
    """An XDG_CACHE_HOME with no compiled code: everything else under the user's cache linked in."""
    cache = root / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    (cache / "gencli").mkdir(parents=True)
    real = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for entry in (real.iterdir() if real.is_dir() else []):
        if entry.name != "gencli":
            (cache / entry.name).symlink_to(entry)
    for entry in ((real / "gencli").iterdir() if (real / "gencli").is_dir() else []):
        if entry.name != "numba":
            (cache / "gencli" / entry.name).symlink_to(entry)
    return cache


def baseline_tree(ref: str, root: Path) -> str:
    """PYTHONPATH for the tree of ``ref``: the core and every plugin package, ahead of the editable installs."""
    tree = root / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "gencli", "plugins"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    paths = [str(tree)] + sorted(str(p) for p in (tree / "plugins").iterdir() if (p / "pyproject.toml").exists())
    return os.pathsep.join(paths)


def machine() -> str:
    """The machine line every benchmark prints (benchmarks/machine.py)."""
    from machine import describe, summary

    return summary(describe())[len("machine: "):]


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per command and variant (median shown)")
    parser.add_argument("--baseline-ref", help="git ref of the 'before' tree, e.g. b3e0540 (default: no 'before')")
    parser.add_argument("--all", action="store_true", help="also the slow examples (minutes each)")
    parser.add_argument("--only", action="append", default=[], help="uses whose name contains this (repeatable)")
    parser.add_argument("--no-torch-variant", action="store_true", help="skip the GENCLI_SAMPLE_TORCH=1 runs")
    args = parser.parse_args()
    uses = [u for u in USES if (args.all or not u.slow) and (not args.only or any(o in u.name for o in args.only))]
    print(f"machine: {machine()}")
    print(f"load average at start (1/5/15 min): {load()}")
    with tempfile.TemporaryDirectory(prefix="used_by-") as tmp:
        root = Path(tmp)
        driver = root / "driver.py"
        driver.write_text(DRIVER)
        variants = [Variant("after", None, {}, root)]
        if not args.no_torch_variant:
            variants.append(Variant("torch", None, {"GENCLI_SAMPLE_TORCH": "1"}, root))
        if args.baseline_ref:
            variants.insert(0, Variant(f"before ({args.baseline_ref})", baseline_tree(args.baseline_ref, root), {},
                                       root))
        rows = []
        for use in uses:
            work = root / "work"
            work.mkdir(exist_ok=True)
            todo = [v for v in variants if v.name != "torch" or has_numpy_sampler(use)]
            cold, warm, cpu, phases = {}, {v.name: [] for v in todo}, {v.name: [] for v in todo}, {}
            for v in todo:  # cold: a compiled-code cache of its own, empty
                v.cache = fresh_cache(root, v.name.split()[0])
                cold[v.name], _ = run(use, v, work)
            for _ in range(args.repeat):
                for v in todo:
                    wall, measured = run(use, v, work)
                    warm[v.name].append(wall)
                    cpu[v.name].append(measured["cpu"])
            for v in todo:
                if use.args[0] == "sample":
                    phases[v.name] = run(use, v, work, driver)[1]
                    phases[v.name].pop("cpu")
            for v in todo:
                times = warm[v.name]
                row = {"use": use.name, "variant": v.name, "cold": cold[v.name], "warm": statistics.median(times),
                       "warm_min": min(times), "warm_cpu": statistics.median(cpu[v.name]), **phases.get(v.name, {})}
                rows.append(row)
                print_row(row, header=len(rows) == 1)
        print(f"load average at end (1/5/15 min): {load()}")
        print()
        print(markdown(rows))


COLUMNS = ("start-up", "imports", "weights", "set-up", "generation", "writing", "other")


def print_row(row: dict, header: bool) -> None:
    if header:
        print(f"{'use':28} {'variant':18} {'cold':>6} {'warm':>6} {'min':>6} {'cpu':>6}  "
              + " ".join(f"{c:>10}" for c in COLUMNS))
    parts = " ".join(f"{row[c]:10.2f}" if c in row else f"{'-':>10}" for c in COLUMNS)
    print(f"{row['use']:28} {row['variant']:18} {row['cold']:6.2f} {row['warm']:6.2f} {row['warm_min']:6.2f} "
          f"{row['warm_cpu']:6.2f}  {parts}", flush=True)


def markdown(rows: list[dict]) -> str:
    lines = ["| command | variant | cold s | warm s (min) | warm CPU s | " + " | ".join(COLUMNS) + " |",
             "|---" * (5 + len(COLUMNS)) + "|"]
    for row in rows:
        cells = " | ".join(f"{row[c]:.2f}" if c in row else "-" for c in COLUMNS)
        use = row["use"].replace("|", "\\|")
        lines.append(f"| {use} | {row['variant']} | {row['cold']:.2f} | {row['warm']:.2f} ({row['warm_min']:.2f})"
                     f" | {row['warm_cpu']:.2f} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
