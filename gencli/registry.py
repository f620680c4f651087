"""Plugin discovery through the ``gencli.plugins`` entry-point group.

Entry points are listed from package metadata without importing any plugin; a plugin's module is imported
the first time that plugin is used. A plugin that fails to import or does not satisfy the contract is kept
as a *broken* entry with a one-line reason, so the rest of the CLI keeps working.
``GENCLI_PLUGINS=a,b`` limits which plugins load (unset: all of them).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from gencli.errors import GencliError, UsageError
from gencli.plugin import MODALITIES, Preset

ENTRY_POINT_GROUP = "gencli.plugins"
REQUIRED_METHODS = ("build", "prepare", "loss", "sample", "evaluate")
OPTION_CLASSES = ("Config", "TrainOptions", "SampleOptions", "EvalOptions")
# Keys reserved in config.json; a Config may not declare fields with these names.
RESERVED_CONFIG_KEYS = frozenset({"gencli_plugin", "gencli_format"})
NAME = re.compile(r"[a-z][a-z0-9_-]*")  # a plugin name is typed as a subcommand


class ContractError(ValueError):
    """A loaded plugin object does not satisfy gencli.plugin.Plugin; the message says how."""


@dataclass
class PluginEntry:
    """One discovered plugin: where it comes from, and once loaded, the plugin or why it is broken."""

    name: str
    target: str  # "module:attribute" as written in the entry point
    package: str
    version: str
    _plugin: Any = field(default=None, repr=False)
    _error: str | None = field(default=None, repr=False)
    _loaded: bool = field(default=False, repr=False)

    def load(self) -> Any:
        """The plugin object; raises GencliError naming the reason when the plugin is broken."""
        if not self._loaded:
            self._loaded = True
            try:
                self._plugin = _import_and_check(self)
            except (Exception, SystemExit) as error:  # any failure in third-party code marks only that plugin
                # broken (a sys.exit() at import time included); a contract violation needs no type name
                self._error = str(error) if isinstance(error, ContractError) else one_line(error)
        if self._error is not None:
            raise GencliError(f"plugin {self.name!r} is broken: {self._error}")
        return self._plugin

    @property
    def status(self) -> str:
        try:
            self.load()
        except GencliError:
            return f"broken: {self._error}"
        return "ok"


MAX_REASON = 300  # characters of a broken plugin's reason kept for `gencli list`


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, capped in length: what a one-line status or error shows."""
    text = str(error).strip().splitlines()
    message = text[0].strip() if text else ""
    line = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."


def _import_and_check(entry: PluginEntry) -> Any:
    module_name, _, attribute = entry.target.partition(":")
    import importlib

    obj = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    plugin = obj() if isinstance(obj, type) else obj
    check_plugin(plugin, expected_name=entry.name)
    return plugin


def check_plugin(plugin: Any, expected_name: str | None = None) -> None:
    """Raise ContractError with a one-line reason if ``plugin`` does not satisfy the contract.

    Everything the CLI will later rely on is checked here, while the plugin is loaded, so a violation
    shows up as ``broken: <reason>`` in `gencli list` rather than as a crash in some later command.
    """
    name = getattr(plugin, "name", None)
    if expected_name is not None and name != expected_name:
        raise ContractError(f"entry point {expected_name!r} loads a plugin named {name!r}")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ContractError(f"name must be lowercase letters, digits, '-' and '_', got {name!r}")
    if getattr(plugin, "modality", None) not in MODALITIES:
        raise ContractError(f"modality must be one of {', '.join(MODALITIES)}")
    for attribute in ("summary", "default_data"):  # `gencli info` and `list` print them
        if not isinstance(getattr(plugin, attribute, None), str):
            raise ContractError(f"{attribute} must be a string")
    for cls_name in OPTION_CLASSES:
        cls = getattr(plugin, cls_name, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ContractError(f"{cls_name} must be a dataclass")
    for method in REQUIRED_METHODS:
        if not callable(getattr(plugin, method, None)):
            raise ContractError(f"missing method {method}()")
    clash = RESERVED_CONFIG_KEYS & {f.name for f in dataclasses.fields(plugin.Config)}
    if clash:
        raise ContractError(f"Config may not define reserved field(s) {sorted(clash)}")
    for attribute in ("presets", "train_defaults"):
        if not isinstance(getattr(plugin, attribute, None), Mapping):
            raise ContractError(f"{attribute} must be a mapping")
    bad_presets = sorted(str(k) for k, v in plugin.presets.items() if not isinstance(v, Preset))
    if bad_presets:
        raise ContractError(f"presets {', '.join(bad_presets)} must be gencli.plugin.Preset values")
    bundled = getattr(plugin, "bundled_weights", None)
    if bundled is not None and not isinstance(bundled, (str, os.PathLike)):
        raise ContractError("bundled_weights must be a path or None")
    # Option names must not shadow the core's own flags of the same command, and every option must be
    # a type Typer can parse (checked here, not when a command is built, so `list` reports it).
    from gencli.options import core_flag_names, dataclass_flags  # imported late: the module graph stays one-way

    for verb, classes in (("sample", ("SampleOptions",)), ("evaluate", ("EvalOptions",)),
                          ("train", ("TrainOptions", "Config"))):
        seen: dict[str, str] = {}
        for cls_name in classes:
            try:
                flags = dataclass_flags(getattr(plugin, cls_name), cls_name)
            except ValueError as error:
                raise ContractError(str(error)) from None
            for flag in flags:
                if flag.dest in core_flag_names(verb, plugin):
                    raise ContractError(f"{cls_name}.{flag.dest} clashes with the core flag {flag.long}")
                if flag.dest in seen:
                    raise ContractError(f"{cls_name}.{flag.dest} is also declared in {seen[flag.dest]}")
                seen[flag.dest] = cls_name


def enabled_names() -> set[str] | None:
    raw = os.environ.get("GENCLI_PLUGINS", "").strip()
    if not raw:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


@cache
def discover() -> dict[str, PluginEntry]:
    """All plugin entries, by name, sorted; nothing is imported yet."""
    wanted = enabled_names()
    found: dict[str, PluginEntry] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted:
            continue
        dist = getattr(ep, "dist", None)
        package = (dist.metadata["Name"] or "?") if dist is not None else "?"
        version = (dist.version or "?") if dist is not None else "?"
        if ep.name in found and (found[ep.name].package, found[ep.name].target) == (package, ep.value):
            continue  # the same distribution seen twice on sys.path (e.g. an egg-info next to the cwd)
        if ep.name in found:  # two packages claim one name: keep the first, say so in its status
            found[ep.name]._error = f"name also claimed by package {package}"
            found[ep.name]._loaded = True
            continue
        found[ep.name] = PluginEntry(ep.name, ep.value, package, version)
    return dict(sorted(found.items()))


def get(name: str) -> PluginEntry:
    entries = discover()
    if name not in entries:
        known = ", ".join(entries) or "none installed"
        hint = " (GENCLI_PLUGINS limits which load)" if enabled_names() is not None else ""
        raise UsageError(f"unknown plugin {name!r}; available: {known}{hint}")
    return entries[name]


def load(name: str) -> Any:
    return get(name).load()
