"""The command line: thin Typer commands that hand typed values to the plain functions in gencli.commands.

Import cost matters here (TAB completion re-runs the program on every keypress), so nothing on this path
imports torch: plugin declarations are torch-free by contract, and model work is imported lazily.
Plugin subcommands (`gencli sample PLUGIN`) are built on demand by :class:`PluginVerbGroup`, so `gencli
--help` imports no plugin at all and `gencli sample charrnn` imports only charrnn: a broken or slow
third-party plugin costs nothing to commands that do not name it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from gencli import commands, registry
from gencli.errors import GencliError, Terminated, debugging, signal_exit_code, stopped_by
from gencli.options import make_command

JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]
HELP = "Train, sample and evaluate the classic deep generative models. Each model family is a plugin."
VERB_HELP = {
    "sample": "Generate images, text, handwriting or audio with a plugin's model.",
    "train": "Train a plugin's model into a run folder (a Hub repo layout), resumable.",
    "evaluate": "Held-out figures (likelihood, bits per dimension, ...) for a plugin's weights.",
}


def report(message: str) -> None:
    # One line, whatever the message holds: a user error never spills over several lines.
    print(f"gencli: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def report_stopped(error: KeyboardInterrupt) -> int:
    """A deliberate stop is not an error: say which signal it was; the exit code is the shell's 128 + N."""
    signum = signal.SIGTERM if isinstance(error, Terminated) else signal.SIGINT
    print(f"gencli: {stopped_by(signum)}", file=sys.stderr, flush=True)
    return signal_exit_code(signum)


def silence_stdout() -> None:
    """After a closed pipe (`| head`), point stdout at /dev/null so the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def _is_out_of_memory(error: BaseException) -> bool:
    # torch.OutOfMemoryError is checked by name: importing torch here would put it on the --help path.
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"


def guarded(body: Callable[..., None]) -> Callable[..., None]:
    """Run a command body so user errors end as one stderr line and an exit code, never a traceback."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            body(*args, **kwargs)
        except GencliError as error:
            if debugging():
                traceback.print_exc()
            report(str(error))
            raise typer.Exit(error.exit_code) from None
        except BrokenPipeError:
            silence_stdout()
            raise typer.Exit(0) from None
        except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM as Terminated: clean-up has run by now
            raise typer.Exit(report_stopped(error)) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except OSError as error:  # disk full, permission denied, ...: the environment, not a bug
            if debugging():
                raise
            where = f": {error.filename}" if error.filename else ""
            report(f"{error.strerror or registry.one_line(error)}{where}")
            raise typer.Exit(1) from None
        except Exception as error:  # a bug, not a user error: still one line unless debugging
            if debugging():
                raise
            if _is_out_of_memory(error):
                report(f"out of memory ({registry.one_line(error)}); try a smaller -n, size or --batch-size")
            else:
                report(f"{registry.one_line(error)} (internal error; GENCLI_DEBUG=1 shows the traceback)")
            raise typer.Exit(1) from None

    run.__name__ = getattr(body, "__name__", "command")
    run.__doc__ = body.__doc__
    if hasattr(body, "__signature__"):
        run.__signature__ = body.__signature__  # type: ignore[attr-defined]
    else:
        run.__wrapped__ = body  # type: ignore[attr-defined]
    return run


class SwitchesTakeNoValue:
    """Typer's help shows a type beside every option, "<bool>" for on/off switches too, as if they took a
    value: show none for them (--help, --json, --quiet ...)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(SwitchesTakeNoValue, TyperCommand):
    pass


class Group(SwitchesTakeNoValue, TyperGroup):
    pass


def _escape(text: str) -> str:
    from rich.markup import escape  # help is rendered as rich markup; a plugin's text is not markup

    return escape(text)


def _single_command(name: str, function: Callable[..., None], help: str, **settings: Any) -> Any:
    """A Click command built by Typer from one function (Typer's public route to a command object)."""
    app = typer.Typer(add_completion=False, rich_markup_mode="rich")
    app.command(name, help=help, cls=Command, **settings)(function)
    return typer.main.get_command(app)


def plugin_command(verb: str, name: str, entry: registry.PluginEntry) -> Any:
    """`gencli VERB NAME [flags]`, flags built from the plugin's dataclasses; a broken plugin gets a command
    that fails with its one-line reason, whatever flags it is given."""
    try:
        plugin = entry.load()
        flags = commands.verb_flags(verb, plugin)
        body = make_command(flags, commands.VERB_BODIES[verb](name, flags), plugin.summary)
        return _single_command(name, guarded(body), _escape(plugin.summary))
    except GencliError as error:
        message = str(error)
    except Exception as error:  # Typer refused the generated signature: the plugin is broken, not the CLI
        message = f"plugin {name!r} is broken: {registry.one_line(error)}"
    return _single_command(name, guarded(_broken(message)), _escape(f"(broken) {message}"),
                           add_help_option=False,
                           context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


def _broken(message: str) -> Callable[[typer.Context], None]:
    def broken(ctx: typer.Context) -> None:
        raise GencliError(message)

    return broken


class PluginVerbGroup(Group):
    """`gencli sample|train|evaluate`: one subcommand per installed plugin, each built when first asked for."""

    verb = ""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(registry.discover())

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            entries = registry.discover()
            if cmd_name not in entries:
                return None
            self.commands[cmd_name] = plugin_command(self.verb, cmd_name, entries[cmd_name])
        return self.commands[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if not ctx.resilient_parsing and not name.startswith("-") and self.get_command(ctx, name) is None:
            registry.get(name)  # raises "unknown plugin 'x'; available: ..."
        return super().resolve_command(ctx, args)


def _verb_group(verb: str) -> typer.Typer:
    group_class = type(f"{verb.title()}Group", (PluginVerbGroup,), {"verb": verb})
    return typer.Typer(cls=group_class, help=VERB_HELP[verb], no_args_is_help=True, rich_markup_mode="rich")


def _data_group() -> typer.Typer:
    data = typer.Typer(cls=Group, help="Named data sets (mnist, fashion-mnist): prepared on first use, verified "
                       "by SHA-256, cached.", no_args_is_help=True, rich_markup_mode="rich")

    @data.command("list", cls=Command)
    @guarded
    def list_(json: JsonFlag = False) -> None:
        """The named data sets: what they hold, where they come from, whether they are ready here."""
        commands.data_list(as_json=json)

    @data.command("fetch", cls=Command)
    @guarded
    def fetch(
        name: Annotated[str, typer.Argument(help="A data set from `gencli data list`.")],
        source: Annotated[Optional[Path], typer.Option(
            "--from", help="A folder of the data set's IDX files (e.g. ~/data/MNIST/raw) instead of a download.")
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Prepare it again even if the cache verifies.")] = False,
        json: JsonFlag = False,
    ) -> None:
        """Download (or read --from), verify and cache a named data set; instant once it is cached."""
        commands.data_fetch(name, source=source, force=force, as_json=json)

    return data


def build_app() -> typer.Typer:
    app = typer.Typer(cls=Group, help=HELP, no_args_is_help=True, pretty_exceptions_enable=False,
                      rich_markup_mode="rich")

    @app.command("list", cls=Command)
    @guarded
    def list_(json: JsonFlag = False) -> None:
        """Installed plugins: modality, package, version, status and default weights."""
        commands.list_plugins(as_json=json)

    @app.command("info", cls=Command)
    @guarded
    def info(
        plugin: Annotated[str, typer.Argument(help="Plugin name (see `gencli list`).")],
        json: JsonFlag = False,
    ) -> None:
        """A plugin's architecture, presets, options, default weights and model card."""
        commands.info(plugin, as_json=json)

    for verb in ("sample", "train", "evaluate"):
        app.add_typer(_verb_group(verb), name=verb)
    app.add_typer(_data_group(), name="data")

    @app.command("serve", cls=Command)
    @guarded
    def serve(
        host: Annotated[str, typer.Option("--host", help="Address to listen on; keep 127.0.0.1 unless you mean "
                                                         "to share the page.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on; 0 picks a free one.", min=0,
                                          max=65535)] = 8000,
        plugins: Annotated[Optional[str], typer.Option("--plugins", help="Comma-separated plugins to serve; "
                                                                         "default: all.")] = None,
        weights: Annotated[Optional[list[str]], typer.Option("--weights", help="PLUGIN=SRC: weights for one "
                                                             "plugin (run folder, file or Hub id); repeatable.")
                           ] = None,
        device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
        threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads for torch; default: as "
                                                       "`gencli sample` (one, or OMP_NUM_THREADS).", min=1,
                                                       max=1024)] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    ) -> None:
        """A local web page: a sample panel for every plugin, iGAN-style editing for image GANs."""
        from gencli.serve import parse_weights, serve as run_server

        chosen = [name.strip() for name in plugins.split(",") if name.strip()] if plugins is not None else None
        run_server(host=host, port=port, plugins=chosen, weights=parse_weights(weights or []), device=device,
                   threads=threads, quiet=quiet)

    @app.command("push", cls=Command)
    @guarded
    def push(
        run_dir: Annotated[Path, typer.Argument(help="Run folder written by `gencli train`.")],
        repo_id: Annotated[str, typer.Argument(help=_escape("Hub repo id, org/name[@branch]."))],
        private: Annotated[bool, typer.Option("--private", help="Create the repo as private.")] = False,
        revision: Annotated[Optional[str], typer.Option("--revision", help="Branch to push to.")] = None,
    ) -> None:
        """Upload a run folder (weights, config, model card) to the Hugging Face Hub."""
        commands.push(run_dir, repo_id, private=private, revision=revision)

    @app.command("download", cls=Command)
    @guarded
    def download(
        repo_id: Annotated[str, typer.Argument(help=_escape("Hub repo id, org/name[@revision]."))],
        revision: Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Download every file again, even if cached.")] = False,
    ) -> None:
        """Fetch a model from the Hub into the local cache, for use offline later."""
        commands.download(repo_id, revision=revision, force=force)

    return app


def _usage_error(error: Exception) -> int:
    """Click's usage errors (unknown flag, bad value, missing argument) as one `gencli: error:` line."""
    if type(error).__name__ == "NoArgsIsHelpError":  # `gencli sample` alone: the help is the answer
        # Typer's rich help is printed (to stdout) while the error is made; plain help is its message.
        if error.format_message().strip():  # type: ignore[attr-defined]
            error.show()  # type: ignore[attr-defined]
        return 2
    ctx = getattr(error, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None and ctx.command.get_help_option(ctx) else ""
    message = error.format_message().strip()  # type: ignore[attr-defined]
    report(f"{message.rstrip('.') if hint else message}{hint}")
    return int(getattr(error, "exit_code", 2))


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so temporary files are removed and the exit code says what happened (143).

    Python's default for SIGTERM is to die on the spot, leaving a half-written output's temporary file behind.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    code: Any = 0
    try:
        command = typer.main.get_command(build_app())
        # standalone_mode=False hands usage errors to us instead of Typer's multi-line error panel.
        argv = list(sys.argv[1:] if argv is None else argv)
        commands.invoked_argv = argv
        with sigterm_raises():
            code = command.main(args=argv, prog_name="gencli", standalone_mode=False)
    except GencliError as error:  # raised while resolving a command, e.g. an unknown plugin
        if debugging():
            traceback.print_exc()
        report(str(error))
        code = error.exit_code
    except BrokenPipeError:
        silence_stdout()
        code = 0
    except typer.Abort:
        report("aborted")
        code = 1
    except KeyboardInterrupt as error:  # before or after a command body (which handles its own)
        code = report_stopped(error)
    except Exception as error:
        if hasattr(error, "format_message") and hasattr(error, "exit_code"):  # Click's UsageError & co
            if debugging():
                traceback.print_exc()
            code = _usage_error(error)
        elif debugging():
            raise
        else:
            report(f"{registry.one_line(error)} (internal error; GENCLI_DEBUG=1 shows the traceback)")
            code = 1
    sys.exit(code if isinstance(code, int) else 0)
