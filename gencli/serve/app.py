"""The ASGI app behind `gencli serve`: one static page (files in gencli/serve/static/, no CDN) and a small JSON API.

    GET  /                       the page
    GET  /api/plugins            every served plugin: name, modality, summary, its sample form, whether editable
    POST /api/sample/{plugin}    option values -> the output as `gencli sample` writes it (text streams)
    POST /api/edit/{plugin}/start  {seed | latent, options} -> the image of that latent
    POST /api/edit/{plugin}      {seed | latent, options, strokes} -> candidates, costs, latents, nearest real images

Safe by default: a request whose Host header is not the address the server is bound to is refused (DNS
rebinding), bodies are capped, options that name files are never taken (see forms.py), one job runs at a time
and a client that goes away cancels its job.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gencli import registry
from gencli.errors import GencliError
from gencli.serve.forms import form
from gencli.serve.jobs import Busy, Cancelled, Editing, Job, Jobs, Models, Result, text_pieces

STATIC = Path(__file__).parent / "static"
MAX_BODY = 4 * 2**20  # bytes: an uploaded photo for srgan or pix2pix (base64), or an edit's strokes (~60 kB)
DISCONNECT_POLL = 0.2  # seconds between checks that the client is still there


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host header values this server answers: its own address, with and without the port (and localhost for a
    loopback address). Anything else is a page on another site reaching in through DNS rebinding."""
    names = {host, f"[{host}]"} if ":" in host else {host}
    if host in ("127.0.0.1", "::1", "localhost"):
        names |= {"localhost", "127.0.0.1", "[::1]"}
    return names | {f"{name}:{port}" for name in names}


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


class Guard:
    """ASGI middleware: the Host check and the body cap, before any route runs."""

    def __init__(self, app: Any, hosts: set[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("host", "") not in self.hosts:
            await error("refused: the Host header does not name this server's address", 421)(scope, receive, send)
            return
        if scope["method"] == "POST":
            length = headers.get("content-length")
            if length is None or not length.isdigit():
                await error("a request body needs a Content-Length", 411)(scope, receive, send)
                return
            if int(length) > MAX_BODY:
                await error(f"request body of {int(length):,} bytes is over this server's limit of "
                            f"{MAX_BODY:,}", 413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:  # Content-Length lied
        raise GencliError(f"request body over this server's limit of {MAX_BODY:,} bytes")
    try:
        return json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise GencliError("the request body is not valid JSON") from None


async def run_job(request: Request, jobs: Jobs, work: Callable[[Job, Callable[[Any], None]], None]) -> Any:
    """Run ``work(job, ready)`` on a worker thread once the running slot is free, holding it until the thread ends;
    returns what it hands to ``ready`` (and the job), or raises what it raised. The client going away cancels
    the job, or its place in the queue."""
    jobs.enqueue()
    try:
        while not jobs.try_claim():  # wait for the running job, giving up if our client leaves meanwhile
            if await request.is_disconnected():
                raise Cancelled()
            await asyncio.sleep(0.05)
    finally:
        jobs.leave_queue()
    job = Job()
    loop = asyncio.get_running_loop()
    answer: asyncio.Future = loop.create_future()

    def settle(value: Any, failed: bool) -> None:
        if not answer.done():
            (answer.set_exception if failed else answer.set_result)(value)

    def thread() -> None:
        try:
            work(job, lambda value: loop.call_soon_threadsafe(settle, value, False))
        except BaseException as failure:  # noqa: BLE001  (handed to the request's coroutine)
            loop.call_soon_threadsafe(settle, failure, True)
        finally:
            jobs.release()

    threading.Thread(target=thread, name="gencli-serve-job", daemon=True).start()
    while not answer.done():
        await asyncio.wait([answer], timeout=DISCONNECT_POLL)
        if not answer.done() and await request.is_disconnected():
            job.cancel.set()
            raise Cancelled()
    return answer.result(), job


def create_app(*, plugins: list[str] | None = None, weights: dict[str, str] | None = None, host: str = "127.0.0.1",
               port: int = 8000, device: str = "cpu", threads: int | None = None) -> Any:
    """The app for these plugins (default: every installed one that loads)."""
    names = plugins if plugins is not None else [name for name in registry.discover()]
    jobs = Jobs(Models(weights, device, threads), names)
    editing = Editing(jobs)

    def described(name: str) -> dict[str, Any]:
        try:
            plugin = registry.load(name)
            return {"name": name, "modality": plugin.modality, "summary": plugin.summary, "form": form(plugin),
                    "editable": getattr(plugin, "latent_editor", None) is not None,
                    "needs_input": getattr(plugin, "image_input", None) is not None}
        except Exception as failure:  # a broken plugin is shown as such, not taking the page down
            return {"name": name, "broken": registry.one_line(failure)}

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def list_plugins(request: Request) -> Response:
        return JSONResponse({"plugins": [described(name) for name in names]})

    async def guarded(request: Request, body: Callable[[], Any]) -> Response:
        try:
            return await body()
        except Busy as failure:
            return error(str(failure), 429)
        except Cancelled:
            return Response(status_code=499)  # nobody is listening; the status is for the log
        except GencliError as failure:
            return error(str(failure))

    async def sample(request: Request) -> Response:
        name = request.path_params["plugin"]

        async def body() -> Response:
            sent = await json_body(request)
            result, job = await run_job(request, jobs, lambda job, ready: jobs.sample(name, sent, job, ready))
            return respond(result, job)

        return await guarded(request, body)

    async def edit_start(request: Request) -> Response:
        name = request.path_params["plugin"]

        async def body() -> Response:
            sent = await json_body(request)
            answer, _ = await run_job(request, jobs, lambda job, ready: ready(editing.start(name, sent)))
            return JSONResponse(answer)

        return await guarded(request, body)

    async def edit(request: Request) -> Response:
        name = request.path_params["plugin"]

        async def body() -> Response:
            sent = await json_body(request)
            answer, _ = await run_job(request, jobs, lambda job, ready: ready(editing.edit(name, sent, job)))
            return JSONResponse(answer)

        return await guarded(request, body)

    routes = [
        Route("/", page),
        Route("/api/plugins", list_plugins),
        Route("/api/sample/{plugin}", sample, methods=["POST"]),
        Route("/api/edit/{plugin}/start", edit_start, methods=["POST"]),
        Route("/api/edit/{plugin}", edit, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    return Guard(app, allowed_hosts(host, port))


def respond(result: Result, job: Job) -> Response:
    # Header values must be Latin-1: the command (a prime may be any text) travels percent-encoded.
    headers = {"X-Gencli-Command": quote(result.command), "X-Gencli-Filename": quote(result.filename),
               "X-Gencli-Provenance": quote(json.dumps(result.provenance)), "Cache-Control": "no-store"}
    if result.chunks is None:
        return Response(result.data, media_type=result.media_type, headers=headers)

    async def stream() -> Any:
        pieces = text_pieces(result)
        try:
            while True:
                piece = await asyncio.to_thread(next, pieces, None)
                if piece is None:
                    return
                yield piece
        finally:
            job.cancel.set()  # the client went away mid-stream (or it ended): stop generating

    return StreamingResponse(stream(), media_type=result.media_type, headers=headers)
