"""Plugin discovery through the ``gencli.plugins`` entry-point group.

Entry points are listed from package metadata without importing any plugin; a plugin's module is imported
the first time that plugin is used. A plugin that fails to import or does not satisfy the contract is kept
as a *broken* entry with a one-line reason, so the rest of the CLI keeps working.
``GENCLI_PLUGINS=a,b`` limits which plugins load (unset: all of them).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from gencli.errors import GencliError
from gencli.plugin import MODALITIES, option_fields

ENTRY_POINT_GROUP = "gencli.plugins"
REQUIRED_METHODS = ("build", "prepare", "loss", "sample", "evaluate")
OPTION_CLASSES = ("Config", "TrainOptions", "SampleOptions", "EvalOptions")
# Keys reserved in config.json; a Config may not declare fields with these names.
RESERVED_CONFIG_KEYS = frozenset({"gencli_plugin", "gencli_format"})


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
            except Exception as error:  # any failure in third-party code marks only that plugin broken
                self._error = one_line(error)
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


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = text[0] if text else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


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
    """Raise ValueError with a one-line reason if ``plugin`` does not satisfy the contract."""
    name = getattr(plugin, "name", None)
    if expected_name is not None and name != expected_name:
        raise ValueError(f"entry point {expected_name!r} loads a plugin named {name!r}")
    if getattr(plugin, "modality", None) not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}")
    for cls_name in OPTION_CLASSES:
        cls = getattr(plugin, cls_name, None)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{cls_name} must be a dataclass")
    for method in REQUIRED_METHODS:
        if not callable(getattr(plugin, method, None)):
            raise ValueError(f"missing method {method}()")
    clash = RESERVED_CONFIG_KEYS & {f.name for f in dataclasses.fields(plugin.Config)}
    if clash:
        raise ValueError(f"Config may not define reserved field(s) {sorted(clash)}")
    # Option names must not shadow the core's own flags of the same command.
    from gencli.options import CORE_FLAGS  # torch-free, imported late to keep the module graph one-way

    for verb, classes in (("sample", ("SampleOptions",)), ("evaluate", ("EvalOptions",)),
                          ("train", ("TrainOptions", "Config"))):
        for cls_name in classes:
            for f in option_fields(getattr(plugin, cls_name)):
                if f.name in CORE_FLAGS[verb]:
                    raise ValueError(f"{cls_name}.{f.name} clashes with the core flag --{f.name.replace('_', '-')}")


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
        package = dist.metadata["Name"] if dist is not None else "?"
        version = dist.version if dist is not None else "?"
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
        raise GencliError(f"unknown plugin {name!r}; available: {known}{hint}")
    return entries[name]


def load(name: str) -> Any:
    return get(name).load()
