"""`gencli serve`: the API behind the page (through Starlette's test client, no sockets), its safety rules, and
the real server process starting and stopping. The browser test is tests/test_serve_browser.py."""

from __future__ import annotations

import dataclasses
import io
import json
import signal
import subprocess
import sys
import typing
import urllib.request
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from conftest import gencli_env, run_gencli
from PIL import Image

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from gencli import registry  # noqa: E402
from gencli.plugin import option_fields  # noqa: E402
from gencli.serve.app import MAX_BODY, create_app  # noqa: E402
from gencli.serve.forms import LIMITS, form  # noqa: E402
from gencli.serve.jobs import Busy, Jobs, Models  # noqa: E402

ADDRESS = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def client() -> TestClient:
    # threads=None: --threads would set NUMBA_NUM_THREADS in this test process, and numba refuses a second value
    # once its pool runs (the wavenet tests in the same worker then fail); OMP_NUM_THREADS=1 holds torch to one.
    app = create_app(plugins=["charrnn", "dcgan", "vae"], host="127.0.0.1", port=8000, device="cpu")
    with TestClient(app, base_url=ADDRESS) as test_client:
        yield test_client


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_a_foreign_host_header_is_refused(client: TestClient) -> None:
    assert client.get("/api/plugins").status_code == 200
    for host in ("evil.example", "evil.example:8000", "127.0.0.1:9999"):
        answer = client.get("/api/plugins", headers={"Host": host})
        assert answer.status_code == 421, host
        assert "Host header" in answer.json()["error"]
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200


def test_over_limit_requests_get_a_clear_message(client: TestClient) -> None:
    answer = client.post("/api/sample/dcgan", json={"n": LIMITS["n"] + 1})
    assert answer.status_code == 400
    assert answer.json()["error"] == f"-n {LIMITS['n'] + 1} is over this server's limit of {LIMITS['n']}"
    answer = client.post("/api/sample/charrnn", content=b"{" + b" " * MAX_BODY + b"}",
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "over this server's limit" in answer.json()["error"]
    answer = client.post("/api/sample/charrnn", json={"prime": "x" * 10_000})
    assert answer.status_code == 400 and "characters" in answer.json()["error"]
    answer = client.post("/api/sample/charrnn", json={"temperature": "hot"})
    assert answer.status_code == 400 and answer.json()["error"] == "--temperature must be a number"
    answer = client.post("/api/sample/nosuch", json={})
    assert answer.status_code == 400 and "unknown plugin" in answer.json()["error"]


def test_options_that_name_files_are_never_taken(client: TestClient) -> None:
    for plugin, option in (("vae", "reconstruct"), ("vae", "around"), ("dcgan", "arithmetic")):
        answer = client.post(f"/api/sample/{plugin}", json={option: "/etc/passwd"})
        assert answer.status_code == 400, (plugin, option)
        assert "unknown option" in answer.json()["error"]


def test_a_second_job_waits_and_a_burst_beyond_the_queue_is_refused() -> None:
    jobs = Jobs(Models(), ["charrnn"])
    assert jobs.try_claim() and not jobs.try_claim()  # one running at a time
    for _ in range(Jobs.MAX_WAITING):
        jobs.enqueue()
    with pytest.raises(Busy, match="busy"):
        jobs.enqueue()
    jobs.leave_queue()
    jobs.enqueue()  # a place freed is a place taken
    jobs.release()
    assert jobs.try_claim()


def file_fields(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {f.name for f in option_fields(cls)
            if Path in (hints[f.name], *typing.get_args(hints[f.name])) or f.metadata.get("reads_files")}


@pytest.mark.parametrize("name", sorted(registry.discover()))
def test_each_form_matches_the_plugins_sample_options(name: str) -> None:
    plugin = registry.load(name)
    fields = {entry["name"]: entry for entry in form(plugin)}
    declared = {f.name: f for f in option_fields(plugin.SampleOptions)}
    assert set(fields) == {"n", "seed"} | (set(declared) - file_fields(plugin.SampleOptions))
    for field_name, entry in fields.items():
        if field_name in ("n", "seed"):
            continue
        spec = declared[field_name]
        assert entry["help"] == spec.metadata["help"]
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        assert entry["default"] == (default if default is not None else None) or default in (None, [])
        if spec.metadata.get("minimum") is not None:
            assert entry["min"] == spec.metadata["minimum"]
        if spec.metadata.get("maximum") is not None:
            assert entry["max"] == min(spec.metadata["maximum"], LIMITS.get(field_name, float("inf")))


def test_an_image_sample_is_the_one_the_command_line_writes(client: TestClient, tmp_path: Path) -> None:
    answer = client.post("/api/sample/dcgan", json={"n": 4, "seed": 3})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    command = unquote(answer.headers["x-gencli-command"])
    assert command == "gencli sample dcgan -n 4 --seed 3 -o dcgan.png"
    from gencli.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(command.split()[1:-2] + ["-o", str(tmp_path / "cli.png"), "--threads", "1", "-q"])
    assert stopped.value.code == 0
    assert np.array_equal(png_pixels(answer.content), png_pixels((tmp_path / "cli.png").read_bytes()))
    provenance = json.loads(Image.open(io.BytesIO(answer.content)).text["gencli"])
    assert provenance["plugin"] == "dcgan" and provenance["seed"] == 3


def test_text_streams_back_with_its_command(client: TestClient) -> None:
    answer = client.post("/api/sample/charrnn", json={"prime": "The ", "length": 60, "seed": 1})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert answer.text.startswith("The ") and len(answer.text) >= 60
    assert unquote(answer.headers["x-gencli-command"]) == "gencli sample charrnn --seed 1 --prime 'The ' --length 60"


def test_an_edit_brings_back_candidates_closer_to_the_strokes(client: TestClient) -> None:
    start = client.post("/api/edit/dcgan/start", json={"seed": 5})
    assert start.status_code == 200
    shape = (start.json()["height"], start.json()["width"])
    rgba = np.zeros(shape + (4,), dtype=int)
    rgba[6:22, 12:16] = (255, 255, 255, 255)  # a white vertical bar
    answer = client.post("/api/edit/dcgan", json={"latent": start.json()["latent"],
                                                  "strokes": {"colour": rgba.ravel().tolist()}})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert len(result["candidates"]) == 4 and len(result["neighbours"][0]) == 4
    assert result["colour_errors"][0] < 0.5 * result["start_colour_error"]
    nothing = client.post("/api/edit/dcgan", json={"seed": 5, "strokes": {"colour": [0] * rgba.size}})
    assert nothing.status_code == 400 and "nothing was painted" in nothing.json()["error"]
    assert client.post("/api/edit/charrnn/start", json={}).json()["error"].startswith("charrnn has no latent")


def test_the_server_prints_its_address_and_stops_cleanly_on_sigint() -> None:
    process = subprocess.Popen([sys.executable, "-m", "gencli", "serve", "--port", "0", "--plugins", "charrnn"],
                               env=gencli_env(), stderr=subprocess.PIPE, text=True)
    try:
        line = process.stderr.readline()
        assert line.startswith("gencli serve: http://127.0.0.1:"), line
        url = line.split()[2]
        with urllib.request.urlopen(url + "api/plugins", timeout=60) as response:
            assert [p["name"] for p in json.load(response)["plugins"]] == ["charrnn"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) in (0, 130)
        rest = process.stderr.read()
        assert "Traceback" not in rest, rest
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=5)
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


def test_a_busy_port_and_a_bad_weights_pair_are_one_line_errors() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = run_gencli("serve", "--port", str(port), "--plugins", "charrnn", timeout=60)
    assert process.returncode != 0
    assert process.stderr.startswith(f"gencli: error: cannot listen on 127.0.0.1:{port}") and process.stderr.count("\n") == 1
    process = run_gencli("serve", "--weights", "dcgan", timeout=60)
    assert process.returncode != 0 and "give PLUGIN=SRC" in process.stderr
    process = run_gencli("serve", "--plugins", "nosuch", timeout=60)
    assert process.returncode != 0 and "unknown plugin(s) nosuch" in process.stderr


def test_an_uploaded_image_is_decoded_like_an_input_file() -> None:
    import base64
    import hashlib
    import types

    from gencli.errors import UsageError
    from gencli.plugin import ImageInput
    from gencli.serve.jobs import uploaded_image

    picture = Image.new("RGBA", (6, 4), (200, 10, 10, 128))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = buffer.getvalue()
    takes_image = types.SimpleNamespace(name="upscaler", image_input=ImageInput(channels=3))
    image = uploaded_image(takes_image, {"name": "red.png", "data": base64.b64encode(data).decode()})
    assert image.pixels.shape == (4, 6, 3) and image.pixels[0, 0].tolist() == [200, 10, 10]
    assert image.alpha is not None and int(image.alpha[0, 0]) == 128
    assert (image.stem, image.sha256) == ("red", hashlib.sha256(data).hexdigest())
    for sent, message in (({"name": "x.png", "data": "not base64!"}, "not base64"),
                          ({"name": "x.png", "data": base64.b64encode(b"hello").decode()}, "not a readable image"),
                          (None, "choose one to upload"), ("x.png", "base64")):
        with pytest.raises(UsageError, match=message):
            uploaded_image(takes_image, sent)
    with pytest.raises(UsageError, match="takes no input image"):
        uploaded_image(types.SimpleNamespace(name="dcgan"), {"name": "x.png", "data": ""})
