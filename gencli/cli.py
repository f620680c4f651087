"""The command line: thin Typer commands that hand typed values to the plain functions in gencli.commands.

Import cost matters here (TAB completion re-runs the program on every keypress), so nothing on this path
imports torch: plugin declarations are torch-free by contract, and model work is imported lazily.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from gencli import commands, registry
from gencli.errors import GencliError
from gencli.options import make_command

HELP = "Train, sample and evaluate the classic deep generative models. Each model family is a plugin."
VERB_HELP = {
    "sample": "Generate images, text, handwriting or audio with a plugin's model.",
    "train": "Train a plugin's model into a run folder (a Hub repo layout), resumable.",
    "evaluate": "Held-out figures (likelihood, bits per dimension, ...) for a plugin's weights.",
}


def report(message: str) -> None:
    print(f"gencli: error: {message}", file=sys.stderr)


def silence_stdout() -> None:
    """After a closed pipe (`| head`), point stdout at /dev/null so the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def guarded(body: Callable[..., None]) -> Callable[..., None]:
    """Run a command body so user errors end as one stderr line and an exit code, never a traceback."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            body(*args, **kwargs)
        except GencliError as error:
            if os.environ.get("GENCLI_DEBUG"):
                traceback.print_exc()
            report(str(error))
            raise typer.Exit(error.exit_code) from None
        except BrokenPipeError:
            silence_stdout()
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            report("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as error:  # a bug, not a user error: still one line unless debugging
            if os.environ.get("GENCLI_DEBUG"):
                raise
            report(f"{registry.one_line(error)} (internal error; GENCLI_DEBUG=1 shows the traceback)")
            raise typer.Exit(1) from None

    run.__name__ = getattr(body, "__name__", "command")
    run.__doc__ = body.__doc__
    if hasattr(body, "__signature__"):
        run.__signature__ = body.__signature__  # type: ignore[attr-defined]
    else:
        run.__wrapped__ = body  # type: ignore[attr-defined]
    return run


def plugin_verb_app(verb: str) -> typer.Typer:
    """`gencli VERB PLUGIN [flags]`: one subcommand per plugin, its flags built from the plugin's dataclasses."""
    app = typer.Typer(help=VERB_HELP[verb], no_args_is_help=True, rich_markup_mode="rich")
    for name, entry in registry.discover().items():
        try:
            plugin = entry.load()
            flags = commands.verb_flags(verb, plugin)
            body = make_command(flags, commands.VERB_BODIES[verb](name, flags), f"{plugin.summary}")
            app.command(name, help=plugin.summary)(guarded(body))
        except GencliError as error:
            app.command(name, help=f"(broken) {error}", context_settings={
                "ignore_unknown_options": True, "allow_extra_args": True})(guarded(_broken(str(error))))
        except ValueError as error:  # flag clash found while building the command
            message = f"plugin {name!r} is broken: {error}"
            app.command(name, help=f"(broken) {message}", context_settings={
                "ignore_unknown_options": True, "allow_extra_args": True})(guarded(_broken(message)))
    return app


def _broken(message: str) -> Callable[[typer.Context], None]:
    def broken(ctx: typer.Context) -> None:
        raise GencliError(message)

    return broken


def build_app() -> typer.Typer:
    app = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich")

    @app.command("list")
    @guarded
    def list_(json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False) -> None:
        """Installed plugins: modality, package, version, status and default weights."""
        commands.list_plugins(as_json=json)

    @app.command("info")
    @guarded
    def info(
        plugin: Annotated[str, typer.Argument(help="Plugin name (see `gencli list`).")],
        json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    ) -> None:
        """A plugin's architecture, presets, options, default weights and model card."""
        commands.info(plugin, as_json=json)

    for verb in ("sample", "train", "evaluate"):
        app.add_typer(plugin_verb_app(verb), name=verb)

    @app.command("push")
    @guarded
    def push(
        run_dir: Annotated[Path, typer.Argument(help="Run folder written by `gencli train`.")],
        repo_id: Annotated[str, typer.Argument(help="Hub repo id, org/name.")],
        private: Annotated[bool, typer.Option("--private", help="Create the repo as private.")] = False,
        revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to.")] = None,
    ) -> None:
        """Upload a run folder (weights, config, model card) to the Hugging Face Hub."""
        commands.push(run_dir, repo_id, private=private, revision=revision)

    @app.command("download")
    @guarded
    def download(
        repo_id: Annotated[str, typer.Argument(help="Hub repo id, org/name[@revision].")],
        revision: Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit.")] = None,
    ) -> None:
        """Fetch a model from the Hub into the local cache, for use offline later."""
        commands.download(repo_id, revision=revision)

    return app


def main(argv: list[str] | None = None) -> None:
    app = build_app()
    try:
        app(args=argv, prog_name="gencli")
    except BrokenPipeError:
        silence_stdout()
        sys.exit(0)
