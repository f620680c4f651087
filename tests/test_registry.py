"""Plugin discovery: entry points, broken-plugin isolation, GENCLI_PLUGINS, and a torch-free import path.

Third-party plugins are simulated by tests/fakeplugins/, a folder holding ``*.dist-info`` metadata and the
modules, put on PYTHONPATH exactly as pip would install them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from conftest import gencli_env, run_gencli
from test_cli import assert_one_error_line

from gencli import registry
from gencli.plugin import option

FAKES = Path(__file__).parent / "fakeplugins"
BROKEN = {
    "broken": "broken: ImportError: gencli_fake_broken needs libfakeaccel.so, which is not installed",
    "badcontract": "broken: missing method sample()",
    "badoption": "broken: ListOptions.layers: type list cannot be a command-line flag",
    "exits": "broken: SystemExit: gencli_fake_exits refuses to load",
}


def fake_env(**extra: str) -> dict[str, str]:
    return gencli_env(PYTHONPATH=str(FAKES), **extra)


def listed(env: dict[str, str]) -> dict[str, dict]:
    process = run_gencli("list", "--json", env=env)
    assert process.returncode == 0, process.stderr
    return {row["name"]: row for row in json.loads(process.stdout)["plugins"]}


# ---- through the real entry-point machinery (subprocesses) ----------------------------------------------


def test_list_json_reports_first_party_plugins_ok() -> None:
    rows = listed(gencli_env())
    charrnn = rows["charrnn"]
    assert charrnn["status"] == "ok"
    assert (charrnn["modality"], charrnn["package"]) == ("text", "gencli-charrnn")
    assert charrnn["default_weights"] == "bundled"  # plugins/charrnn ships its weights in the package


def test_broken_third_party_plugins_are_named_with_one_line_reasons(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    rows = listed(fake_env(GENCLI_FAKE_MARKER=str(marker)))
    assert marker.exists()  # `list` really imported the broken module
    assert rows["charrnn"]["status"] == "ok"
    good = rows["fakeimg"]
    assert (good["status"], good["modality"], good["package"], good["version"]) == (
        "ok", "image", "gencli-fake-good", "1.2.3")
    for name, status in BROKEN.items():
        assert rows[name]["status"].startswith(status), rows[name]
        assert "\n" not in rows[name]["status"]
        assert rows[name]["package"] == "gencli-fake-broken"

    table = run_gencli("list", env=fake_env())
    assert table.returncode == 0 and table.stderr == ""
    lines = table.stdout.decode().splitlines()
    broken_line = next(line for line in lines if line.split()[:1] == ["broken"])
    assert BROKEN["broken"] in broken_line  # whole reason on the plugin's own line, even when piped


def test_other_commands_keep_working_next_to_broken_plugins() -> None:
    help_ = run_gencli("sample", "--help", env=fake_env(COLUMNS="200"))
    assert help_.returncode == 0, help_.stderr
    out = help_.stdout.decode()
    assert "charrnn" in out and "fakeimg" in out and "(broken) plugin 'broken' is broken" in out
    flags = run_gencli("sample", "fakeimg", "--help", env=fake_env(COLUMNS="200"))
    assert flags.returncode == 0 and b"--brightness" in flags.stdout and b"--pattern" in flags.stdout
    info = run_gencli("info", "charrnn", "--json", env=fake_env())
    assert info.returncode == 0 and json.loads(info.stdout)["name"] == "charrnn"


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_using_a_broken_plugin_fails_with_one_line(name: str) -> None:
    process = run_gencli("sample", name, "--length", "5", "--whatever", env=fake_env())
    assert process.returncode == 1 and process.stdout == b""
    assert_one_error_line(process.stderr, f"plugin {name!r} is broken", BROKEN[name].removeprefix("broken: "))


def test_gencli_plugins_limits_what_loads(tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    env = fake_env(GENCLI_PLUGINS="charrnn, fakeimg", GENCLI_FAKE_MARKER=str(marker))
    assert set(listed(env)) == {"charrnn", "fakeimg"}
    process = run_gencli("sample", "broken", env=env)
    assert process.returncode == 2
    assert_one_error_line(process.stderr, "unknown plugin 'broken'", "GENCLI_PLUGINS")
    assert not marker.exists()  # the excluded plugin was never imported
    assert set(listed(fake_env(GENCLI_PLUGINS="fakeimg"))) == {"fakeimg"}


def _imported_modules(process_stderr: str) -> set[str]:
    # -X importtime lines: "import time: self [us] | cumulative | imported package"
    return {line.rsplit("|", 1)[-1].strip() for line in process_stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["list"], ["sample", "--help"], ["info", "charrnn"]])
def test_help_list_and_info_import_no_torch(args: list[str]) -> None:
    import subprocess
    import sys

    process = subprocess.run([sys.executable, "-X", "importtime", "-m", "gencli", *args], env=fake_env(),
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    modules = _imported_modules(process.stderr)
    assert "gencli.cli" in modules  # the measurement works
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}
    assert "numpy" not in modules and "huggingface_hub" not in modules


def test_tab_completion_imports_no_torch_and_offers_the_plugin_flags() -> None:
    import subprocess
    import sys

    env = fake_env(_GENCLI_COMPLETE="complete_bash", COMP_WORDS="gencli sample charrnn --", COMP_CWORD="3")
    process = subprocess.run([sys.executable, "-X", "importtime", "-m", "gencli"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    offered = process.stdout.split()
    assert {"--temperature", "--length", "--prime", "--weights", "--seed", "--output"} <= set(offered)
    modules = _imported_modules(process.stderr)
    assert "gencli.cli" in modules and "torch" not in modules
    assert "gencli_fake_broken" not in modules  # completing one plugin's flags loads only that plugin

    env.update(COMP_WORDS="gencli sample ", COMP_CWORD="2")
    names = run_gencli(env=env).stdout.decode().split()
    assert {"charrnn", "fakeimg", "broken"} <= set(names)


# ---- in-process: the contract check and discovery rules -----------------------------------------------


@dataclass
class _Empty:
    pass


@dataclass
class _Sample:
    temperature: float = option(1.0, "Softmax temperature.")
    mode: Literal["a", "b"] = option("a", "A choice.")
    limit: int | None = option(None, "Optional limit.")


class _Good:
    name = "good"
    modality = "image"
    summary = "ok"
    Config = _Empty
    TrainOptions = _Empty
    SampleOptions = _Sample
    EvalOptions = _Empty
    presets: dict = {}
    train_defaults: dict = {}
    default_data = "none"
    bundled_weights = None

    def build(self, config): ...
    def prepare(self, data, config, options): ...
    def loss(self, model, batch, options): ...
    def sample(self, model, config, options, request): ...
    def evaluate(self, model, config, options, request): ...


def _variant(**attributes) -> object:
    return type("Variant", (_Good,), attributes)()


def _options(**fields) -> type:
    return dataclasses.make_dataclass("Opts", [(name, hint, option(default, "help"))
                                               for name, (hint, default) in fields.items()])


def test_a_good_plugin_passes_the_contract_check() -> None:
    registry.check_plugin(_Good(), expected_name="good")


@pytest.mark.parametrize(("attributes", "reason"), [
    ({"modality": "smell"}, "modality must be one of"),
    ({"name": "Bad Name"}, "name must be"),
    ({"summary": None}, "summary must be a string"),
    ({"default_data": None}, "default_data must be a string"),
    ({"SampleOptions": dict}, "SampleOptions must be a dataclass"),
    ({"sample": None}, "missing method sample()"),
    ({"presets": []}, "presets must be a mapping"),
    ({"presets": {"tiny": {"config": {}}}}, "presets tiny must be gencli.plugin.Preset values"),
    ({"bundled_weights": 3}, "bundled_weights must be a path"),
    ({"SampleOptions": _options(seed=(int, 0))}, "clashes with the core flag --seed"),
    ({"SampleOptions": _options(output=(str, ""))}, "clashes with the core flag --output"),
    ({"TrainOptions": _options(width=(int, 1)), "Config": _options(width=(int, 2))}, "also declared"),
    ({"SampleOptions": _options(shape=(tuple[int, int], (1, 2)))}, "cannot be a command-line flag"),
    ({"SampleOptions": _options(mix=(int | str, 1))}, "cannot be a command-line flag"),
    ({"Config": _options(gencli_plugin=(str, ""))}, "reserved"),
])
def test_contract_violations_are_one_line_reasons(attributes: dict, reason: str) -> None:
    with pytest.raises(registry.ContractError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        registry.check_plugin(_variant(**attributes))


def test_entry_point_must_load_the_plugin_it_names() -> None:
    with pytest.raises(registry.ContractError, match="loads a plugin named 'good'"):
        registry.check_plugin(_Good(), expected_name="other")


class _FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.metadata = {"Name": name}
        self.version = version


class _FakeEntryPoint:
    def __init__(self, name: str, value: str, package: str) -> None:
        self.name, self.value, self.dist = name, value, _FakeDist(package, "1.0")


@pytest.fixture
def fake_entry_points(monkeypatch):
    def install(*points: _FakeEntryPoint) -> None:
        monkeypatch.setattr(registry, "entry_points", lambda group: list(points))
        registry.discover.cache_clear()

    yield install
    registry.discover.cache_clear()


def test_discovery_filters_dedupes_and_flags_name_clashes(fake_entry_points, monkeypatch) -> None:
    fake_entry_points(
        _FakeEntryPoint("zeta", "pkg_z:plugin", "pkg-z"),
        _FakeEntryPoint("alpha", "pkg_a:plugin", "pkg-a"),
        _FakeEntryPoint("alpha", "pkg_a:plugin", "pkg-a"),  # the same distribution found twice on sys.path
        _FakeEntryPoint("twin", "one:plugin", "pkg-one"),
        _FakeEntryPoint("twin", "two:plugin", "pkg-two"),  # two packages claim one name
    )
    entries = registry.discover()
    assert list(entries) == ["alpha", "twin", "zeta"]  # sorted, nothing imported yet
    assert entries["alpha"].status.startswith("broken: ModuleNotFoundError")
    assert entries["twin"].status == "broken: name also claimed by package pkg-two"

    monkeypatch.setenv("GENCLI_PLUGINS", "zeta,nonexistent")
    registry.discover.cache_clear()
    assert list(registry.discover()) == ["zeta"]


def test_a_plugin_that_raises_or_exits_on_import_is_only_marked_broken(tmp_path, monkeypatch, fake_entry_points):
    (tmp_path / "exits_now.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "raises_now.py").write_text("raise RuntimeError('boom ' * 200)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_entry_points(_FakeEntryPoint("exits", "exits_now:plugin", "x"),
                      _FakeEntryPoint("raises", "raises_now:plugin", "x"))
    entries = registry.discover()
    assert entries["exits"].status == "broken: SystemExit: 3"
    status = entries["raises"].status
    assert status.startswith("broken: RuntimeError: boom") and len(status) <= registry.MAX_REASON + 10
    with pytest.raises(registry.GencliError, match="plugin 'raises' is broken"):
        entries["raises"].load()
