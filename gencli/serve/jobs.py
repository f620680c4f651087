"""The server's model work: each plugin's weights loaded once per process, one job at a time, a job cancelled
when its client goes away, and results encoded by the same writers as `gencli sample` (so a download carries
the same provenance as a file the command line writes).

Jobs run on a worker thread (the ASGI event loop stays free to notice a disconnect); one lock serialises them,
because seeding sets process-wide generators and two interleaved jobs would not be reproducible. A cancelled
job stops at its next progress report, which every long sampler makes.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gencli import registry
from gencli.commands import options_instance
from gencli.errors import GencliError, UsageError
from gencli.plugin import Text
from gencli.runspec import shell_join
from gencli.serve.forms import parse_form

MEDIA_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".wav": "audio/wav", ".gif": "image/gif",
               ".csv": "text/csv", ".txt": "text/plain; charset=utf-8"}
SUFFIXES = {"image": ".png", "strokes": ".svg", "audio": ".wav", "video": ".gif", "trajectories": ".svg",
            "text": ".txt"}


class Cancelled(Exception):
    """The client went away; raised from the progress hook so the sampler stops at its next report."""


class Busy(GencliError):
    exit_code = 1


@dataclass
class Job:
    """One request's work: ``cancel`` is set when the client disconnects."""

    cancel: threading.Event = field(default_factory=threading.Event)

    def progress(self, done: int, total: int, **_: Any) -> None:
        if self.cancel.is_set():
            raise Cancelled()


@dataclass
class Result:
    """Encoded output: ``data`` bytes, or for text a stream of ``chunks`` (filled while the job runs)."""

    media_type: str
    filename: str
    command: str
    provenance: dict[str, Any]
    data: bytes = b""
    chunks: queue.Queue | None = None  # text pieces, then None at the end (or an exception)


class Models:
    """Loaded weights per plugin, loaded on first use and kept: the torch model, and where the plugin offers one
    and these options take it, the torch-free sampler's arrays (wavenet's compiled loop is 40x faster)."""

    def __init__(self, weights: dict[str, str] | None = None, device: str = "cpu", threads: int | None = None
                 ) -> None:
        self.weights = dict(weights or {})
        self.device = device
        self.threads = threads
        self._located: dict[str, Any] = {}
        self._torch: dict[str, Any] = {}
        self._arrays: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def sampler(self, plugin: Any, options: Any) -> Any:
        from gencli import weights as weights_module
        from gencli.sampling import Sampler, numpy_sampler_of

        with self._lock:
            located = self._located.get(plugin.name)
            if located is None:
                located = weights_module.locate(plugin, self.weights.get(plugin.name), None, quiet=True)
                self._located[plugin.name] = located
            numpy_path = numpy_sampler_of(plugin, located.config, options, self.device, self.threads)
            if numpy_path is not None:
                key = (plugin.name, repr(sorted(numpy_path.tensors.items())))
                if key not in self._arrays:
                    self._arrays[key] = weights_module.load_located_arrays(located, numpy_path.tensors)
                return Sampler(plugin, options, self._arrays[key], "cpu", numpy_path)
            if plugin.name not in self._torch:
                from gencli.device import resolve_device, set_threads

                target = resolve_device(self.device)
                set_threads(self.threads, target, "sample")  # as `gencli sample`: one thread unless asked
                self._torch[plugin.name] = (weights_module.load_located(plugin, located, target), target)
            loaded, target = self._torch[plugin.name]
            return Sampler(plugin, options, loaded, target)

    def editor(self, plugin: Any, options: Any) -> tuple[Any, Any]:
        """The plugin's ``LatentEditor`` on its loaded torch model (image GANs only), and that loaded sampler."""
        if getattr(plugin, "latent_editor", None) is None:
            raise UsageError(f"{plugin.name} has no latent space to edit; editing is for image GANs")
        sampler = self.sampler(plugin, options)
        return plugin.latent_editor(sampler.loaded.model, sampler.loaded.config, options), sampler


def command_line(plugin: Any, core: dict[str, Any], options: dict[str, Any]) -> str:
    """The `gencli sample` command that makes the same output (values at their defaults left out)."""
    from gencli.plugin import defaults_of

    argv = ["gencli", "sample", plugin.name]
    if core.get("n", 1) != 1:
        argv += ["-n", str(core["n"])]
    if core.get("seed", 0) != 0:
        argv += ["--seed", str(core["seed"])]
    defaults = defaults_of(plugin.SampleOptions)
    for name, value in options.items():
        if value == defaults.get(name):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    suffix = SUFFIXES.get(plugin.modality, "")
    if suffix != ".txt":
        argv += ["-o", f"{plugin.name}{suffix}"]
    return shell_join(argv)


class Jobs:
    """Runs jobs one at a time; up to ``MAX_WAITING`` more wait their turn, and any beyond that are refused with a
    clear message (so a burst of requests cannot queue up minutes of work)."""

    MAX_WAITING = 4

    def __init__(self, models: Models, plugins: list[str]) -> None:
        self.models = models
        self.plugins = plugins
        self._running = threading.Lock()
        self._waiting = 0
        self._count_lock = threading.Lock()

    def enqueue(self) -> None:
        with self._count_lock:
            if self._waiting >= self.MAX_WAITING:
                raise Busy(f"the server is busy: one job running and {self._waiting} waiting (the most it "
                           "queues); try again in a moment")
            self._waiting += 1

    def try_claim(self) -> bool:
        """Take the one running slot if it is free (a waiting request polls this)."""
        return self._running.acquire(blocking=False)

    def leave_queue(self) -> None:
        with self._count_lock:
            self._waiting -= 1

    def plugin(self, name: str) -> Any:
        if name not in self.plugins:
            raise UsageError(f"unknown plugin {name!r}; this server offers: {', '.join(self.plugins)}")
        return registry.load(name)

    def release(self) -> None:
        self._running.release()

    def sample(self, name: str, sent: Any, job: Job, ready: Callable[[Result], None]) -> None:
        """Run one sample request on this thread (the caller holds the running slot) and hand its ``Result`` to
        ``ready``: text at once, its ``chunks`` then filled here as they are generated (so the page shows them
        as they come); anything else once encoded."""
        plugin = self.plugin(name)
        sent = dict(sent) if isinstance(sent, dict) else sent
        uploaded = sent.pop("input", None) if isinstance(sent, dict) else None
        core, values = parse_form(plugin, sent)
        image = uploaded_image(plugin, uploaded)
        options = options_instance(plugin.SampleOptions, values)
        sampler = self.models.sampler(plugin, options)
        from gencli.plugin import SampleRequest
        from gencli.sampling import provenance_of

        sampler.reseed(core["seed"])
        provenance = provenance_of(plugin, sampler.loaded, core["seed"], options)
        if image is not None:
            from gencli.inputs import provenance_of as input_provenance

            provenance["input"] = input_provenance(image)
        suffix = SUFFIXES.get(plugin.modality, ".bin")
        result = Result(MEDIA_TYPES.get(suffix, "application/octet-stream"), f"{name}{suffix}",
                        command_line(plugin, core, values), provenance)
        with sampler.inference():
            output = sampler.generate(SampleRequest(core["n"], core["seed"], sampler.target, progress=job.progress,
                                                    input=image))
            if not isinstance(output, Text):
                result.data = encode(output, suffix, provenance)
                ready(result)
                return
            result.chunks = queue.Queue()
            ready(result)
            try:
                for piece in output.chunks:
                    if job.cancel.is_set():
                        raise Cancelled()
                    result.chunks.put(piece)
                result.chunks.put(None)
            except BaseException as error:  # noqa: BLE001  (the response side re-raises or ends on it)
                result.chunks.put(error)


def uploaded_image(plugin: Any, uploaded: Any) -> Any:
    """The image a browser sent for a plugin that takes one (``image_input``): the file's bytes, base64 in JSON,
    decoded by the same code and limits as `--input` (never a path). None for plugins that take no image."""
    declared = getattr(plugin, "image_input", None)
    if declared is None:
        if uploaded is not None:
            raise UsageError(f"{plugin.name} takes no input image")
        return None
    if uploaded is None:
        if declared.required:
            raise UsageError(f"{plugin.name} works on an image: choose one to upload")
        return None
    import base64
    import binascii

    from gencli.inputs import InputSource, check_readable, decode

    if not isinstance(uploaded, dict) or not isinstance(uploaded.get("data"), str):
        raise UsageError("input must be an object with the image file's bytes in base64 ('data') and its 'name'")
    try:
        data = base64.b64decode(uploaded["data"], validate=True)
    except (binascii.Error, ValueError):
        raise UsageError("input: 'data' is not base64") from None
    name = str(uploaded.get("name") or "upload")[:100]
    stem = name.rsplit(".", 1)[0] or "upload"
    source = InputSource(name=name, stem=stem, data=data)
    check_readable(source, declared)
    return decode(source, declared)


def encode(output: Any, suffix: str, provenance: dict[str, Any]) -> bytes:
    """The bytes `gencli sample -o NAME{suffix}` would write, provenance included."""
    from gencli import writers

    buffer = io.BytesIO()
    writers.write(output, "-", provenance, default_stem="sample", stdout=buffer)
    return buffer.getvalue()


def text_pieces(result: Result) -> Iterator[str]:
    """The text of a streaming result, as it is generated."""
    assert result.chunks is not None
    while True:
        piece = result.chunks.get()
        if piece is None:
            return
        if isinstance(piece, BaseException):
            raise piece
        yield piece


# ---- the editing panel ------------------------------------------------------------------------------------

NEIGHBOURS = 4  # nearest real images shown beside the chosen candidate
MAX_LATENT = 4096


def png_base64(images: Any, provenance: dict[str, Any]) -> list[str]:
    """Each image of (N, C, H, W) in [0, 1] as a base64 PNG (with provenance), for a JSON answer."""
    import base64

    import numpy as np
    import torch

    from gencli.plugin import Images

    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    return [base64.b64encode(encode(Images(np.ascontiguousarray(one[None])), ".png", provenance)).decode("ascii")
            for one in pixels]


def _latent(editor: Any, sent: dict[str, Any]) -> Any:
    import torch

    latent = sent.get("latent")
    if latent is None:
        seed = sent.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise UsageError("seed must be an integer from 0 to 2**32 - 1")
        return editor.latent_of_seed(seed)
    if (not isinstance(latent, list) or len(latent) != editor.z_dim or len(latent) > MAX_LATENT
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in latent)):
        raise UsageError(f"latent must be a list of {editor.z_dim} numbers")
    z = torch.tensor(latent, dtype=torch.float32)
    if not torch.isfinite(z).all():
        raise UsageError("latent must be finite")
    return z


def _strokes(sent: Any, channels: int, height: int, width: int) -> Any:
    """The browser's painting at the generator's resolution: RGBA bytes for colour strokes, alpha for edges."""
    import torch

    from gencli.editing import Strokes

    if not isinstance(sent, dict):
        raise UsageError("strokes must be an object with 'colour' (RGBA values) and optionally 'edge'")
    colour = sent.get("colour")
    if not isinstance(colour, list) or len(colour) != height * width * 4:
        raise UsageError(f"strokes.colour must hold {height} x {width} RGBA values (0-255)")
    rgba = torch.tensor(colour, dtype=torch.float32).view(height, width, 4) / 255.0  # (H, W, 4)
    if not (rgba.min() >= 0 and rgba.max() <= 1):
        raise UsageError("strokes.colour values must be 0-255")
    rgb = rgba[..., :3].permute(2, 0, 1)  # (3, H, W)
    target = rgb.mean(0, keepdim=True) if channels == 1 else rgb
    edge = sent.get("edge")
    edge_mask = None
    if edge is not None:
        if not isinstance(edge, list) or len(edge) != height * width:
            raise UsageError(f"strokes.edge must hold {height} x {width} values (0-255)")
        edge_mask = torch.tensor(edge, dtype=torch.float32).view(height, width).clamp(0, 255) / 255.0
    return Strokes(colour=target, colour_mask=rgba[..., 3], edge_mask=edge_mask)


class Editing:
    """The editing panel's two calls: the image of a latent (to start from), and the edit search."""

    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self._real: dict[str, Any] = {}

    def _editor(self, name: str, sent: Any) -> tuple[Any, Any, dict[str, Any]]:
        plugin = self.jobs.plugin(name)
        if not isinstance(sent, dict):
            raise UsageError("the request body must be a JSON object")
        _, values = parse_form(plugin, sent.get("options") or {})
        options = options_instance(plugin.SampleOptions, values)
        editor, sampler = self.jobs.models.editor(plugin, options)
        from gencli.sampling import provenance_of

        return plugin, editor, provenance_of(plugin, sampler.loaded, int(sent.get("seed", 0) or 0), options)

    def start(self, name: str, sent: Any) -> dict[str, Any]:
        import torch

        plugin, editor, provenance = self._editor(name, sent)
        z = _latent(editor, sent)
        with torch.no_grad():
            image = editor.generate(z[None]).clamp(0, 1)  # (1, C, H, W)
        _, channels, height, width = image.shape
        return {"image": png_base64(image, provenance)[0], "latent": z.tolist(), "width": width,
                "height": height, "channels": channels}

    def edit(self, name: str, sent: Any, job: Job) -> dict[str, Any]:
        import time

        import torch

        from gencli.editing import edit_search, morph, nearest_images

        plugin, editor, provenance = self._editor(name, sent)
        z = _latent(editor, sent)
        with torch.no_grad():
            start_image = editor.generate(z[None])
        _, channels, height, width = start_image.shape
        strokes = _strokes(sent.get("strokes"), channels, height, width)
        if strokes.empty:
            raise UsageError("nothing was painted: draw a colour stroke or an edge on the image first")
        job.progress(0, 1)
        began = time.perf_counter()
        result = edit_search(editor.generate, z, strokes, seed=int(sent.get("seed", 0) or 0))
        seconds = time.perf_counter() - began
        job.progress(1, 1)
        if name not in self._real:
            self._real[name] = editor.real_images().float() / 255.0  # (M, C, H, W)
        real = self._real[name]
        closest = nearest_images(result.images, real, NEIGHBOURS)  # (K, NEIGHBOURS)
        return {
            "candidates": png_base64(result.images, provenance),
            "latents": result.latents.tolist(),
            "costs": result.costs.tolist(),
            "colour_errors": result.colour_errors.tolist(),
            "start_colour_error": result.start_colour_error,
            "neighbours": [png_base64(real[row], {"source": "training data"}) for row in closest],
            "morph": png_base64(morph(editor.generate, z, result.latents[0]), provenance),
            "seconds": seconds,
        }
