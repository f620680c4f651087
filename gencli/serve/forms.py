"""A plugin's sample form, made from the same option dataclasses as its `gencli sample` flags, and the check of
what a browser sends back.

The form has the flags' names, help, defaults and bounds, plus the core's `-n` and `--seed`. Options that name
local files (``Path`` fields, and str fields declared with ``reads_files=True``) are left out and refused: the
server never takes a file path from the browser. Over the flags' own bounds the server adds its own caps
(``LIMITS``), so one request cannot hold the machine for minutes.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

from gencli.errors import UsageError
from gencli.options import COMMON, Flag, bounds_text, plugin_flags, problem_with
from gencli.plugin import option_fields

# The server's caps over the flags' own bounds: what one request may ask of a shared 2-core machine.
LIMITS = {"n": 64, "seconds": 10.0, "length": 2000, "gibbs_steps": 5000, "steps": 64, "snapshots": 32}
MAX_TEXT = 500  # characters of any text option (a prime, a handwriting line)
CORE_FIELDS = ("n", "seed")


def _reads_files(flag: Flag, plugin: Any) -> bool:
    if flag.type is Path or typing.get_args(flag.type) == (Path,):
        return True
    fields = {f.name: f for f in option_fields(plugin.SampleOptions)}
    return bool(fields.get(flag.dest) and fields[flag.dest].metadata.get("reads_files"))


def form_flags(plugin: Any) -> list[Flag]:
    """The flags a browser may set: -n, --seed and the plugin's SampleOptions, less those naming files."""
    flags = [f for f in plugin_flags("sample", plugin) if f.group == "core" and f.dest in CORE_FIELDS]
    flags += [f for f in plugin_flags("sample", plugin)
              if f.group == "SampleOptions" and not _reads_files(f, plugin)]
    return flags


def _kind(flag: Flag) -> str:
    if flag.type is bool:
        return "bool"
    if flag.type in (int, float):
        return flag.type.__name__
    if typing.get_origin(flag.type) is typing.Literal:
        return "choice"
    if typing.get_origin(flag.type) is list:
        return "list"
    return "str"


def _limit(flag: Flag) -> float | None:
    declared = flag.maximum
    cap = LIMITS.get(flag.dest)
    if cap is None:
        return declared
    return cap if declared is None else min(cap, declared)


def form(plugin: Any) -> list[dict[str, Any]]:
    """The JSON the page builds a form from: one entry per field, in flag order."""
    fields = []
    for flag in form_flags(plugin):
        entry = {"name": flag.dest, "flag": flag.label, "kind": _kind(flag), "help": flag.help,
                 "default": flag.default if flag.default is not None else ("" if flag.type is str else None),
                 "bounds": bounds_text(flag)}
        if entry["kind"] == "choice":
            entry["choices"] = list(typing.get_args(flag.type))
        if entry["kind"] in ("int", "float"):
            entry["min"] = flag.minimum if flag.minimum is not None else flag.above
            entry["max"] = _limit(flag)
        if flag.dest in LIMITS:
            entry["server_limit"] = LIMITS[flag.dest]
        fields.append(entry)
    return fields


def _coerce(flag: Flag, value: Any) -> Any:
    kind = _kind(flag)
    if kind == "bool":
        if not isinstance(value, bool):
            raise UsageError(f"{flag.label} must be true or false")
        return value
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(f"{flag.label} must be an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(f"{flag.label} must be a number")
        return float(value)
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise UsageError(f"{flag.label} must be a list")
        return value
    if not isinstance(value, str):
        raise UsageError(f"{flag.label} must be text")
    if len(value) > MAX_TEXT:
        raise UsageError(f"{flag.long}: {len(value):,} characters is over this server's limit of {MAX_TEXT}")
    if kind == "choice" and value not in typing.get_args(flag.type):
        raise UsageError(f"{flag.label} must be one of {', '.join(typing.get_args(flag.type))}")
    return value


def parse_form(plugin: Any, sent: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A browser's values -> (core values n and seed, SampleOptions values); UsageError (one line) for anything
    unknown, of the wrong type, out of the flag's bounds or over the server's limits."""
    if not isinstance(sent, dict):
        raise UsageError("the request body must be a JSON object of option values")
    flags = {f.dest: f for f in form_flags(plugin)}
    unknown = sorted(set(sent) - set(flags))
    if unknown:
        raise UsageError(f"unknown option(s) for {plugin.name}: {', '.join(unknown)}"
                         " (options that name files are not taken from a browser)")
    core: dict[str, Any] = {"n": 1, "seed": COMMON["seed"].default}
    options: dict[str, Any] = {}
    for name, value in sent.items():
        flag = flags[name]
        value = _coerce(flag, value)
        problem = problem_with(flag, value)
        if problem is not None:
            raise UsageError(f"{flag.label} {problem}, not {value!r}")
        limit = LIMITS.get(name)
        if limit is not None and isinstance(value, (int, float)) and value > limit:
            raise UsageError(f"{flag.label} {value:g} is over this server's limit of {limit:g}")
        (core if flag.group == "core" else options)[name] = value
    return core, options
