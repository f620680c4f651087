"""`gencli serve`: a local web page with a sample panel for every plugin and iGAN-style editing for image GANs.

app.py is the ASGI app, forms.py turns option dataclasses into forms and checks what comes back, jobs.py does
the model work, static/ is the page. ``serve`` below binds the socket and runs uvicorn.
"""

from __future__ import annotations

import socket
import sys

from gencli.errors import UsageError


def parse_weights(pairs: list[str]) -> dict[str, str]:
    """["dcgan=runs/d", ...] -> {"dcgan": "runs/d"}; one line for a malformed pair."""
    chosen = {}
    for pair in pairs:
        name, sep, source = pair.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise UsageError(f"--weights {pair!r}: give PLUGIN=SRC, e.g. dcgan=runs/dcgan")
        chosen[name.strip()] = source.strip()
    return chosen


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(*, host: str, port: int, plugins: list[str] | None, weights: dict[str, str], device: str,
          threads: int | None, quiet: bool) -> None:
    from gencli import registry

    available = list(registry.discover())
    if plugins is not None:
        unknown = [name for name in plugins if name not in available]
        if unknown:
            raise UsageError(f"--plugins: unknown plugin(s) {', '.join(unknown)}; available: {', '.join(available)}")
    for name in weights:
        if name not in (plugins or available):
            raise UsageError(f"--weights {name}=...: {name} is not served")
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    import uvicorn

    from gencli.serve.app import create_app

    app = create_app(plugins=plugins, weights=weights, host=host, port=bound_port, device=device,
                     threads=threads)
    shown = f"[{host}]" if ":" in host else host
    print(f"gencli serve: http://{shown}:{bound_port}/  (Ctrl-C stops it)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning" if not quiet else "error", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
