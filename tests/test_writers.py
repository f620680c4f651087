"""Output writers: PNG, SVG, WAV and text, to files or stdout, each carrying its provenance.

Unit tests feed small numpy arrays straight to gencli.writers; the end-to-end tests drive the fake image
plugin in tests/fakeplugins through the real CLI.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import gencli_env, run_gencli
from PIL import Image
from test_cli import assert_one_error_line, run_in_pty

from gencli import writers
from gencli.errors import UsageError
from gencli.plugin import Audio, Images, Strokes, Text

FAKES = Path(__file__).parent / "fakeplugins"
PROVENANCE = {"plugin": "test", "weights": "local:/w", "weights_sha256": "ab" * 32, "seed": 7,
              "options": {"prime": "<tag> & \"quotes\"", "length": 3}, "gencli_version": "0.1.0"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FakeStdout(io.TextIOWrapper):
    """A text stdout with a binary .buffer, that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def data(self) -> bytes:
        return self.buffer.getvalue()


def images(n: int, h: int = 5, w: int = 7, c: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data.startswith(PNG_SIGNATURE)
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def png_provenance(data: bytes) -> dict:
    texts = [body for kind, body in png_chunks(data) if kind == b"tEXt"]
    keyword, _, value = next(body for body in texts if body.startswith(b"gencli\x00")).partition(b"\x00")
    return json.loads(value.decode("latin-1"))


def riff_chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, at = {}, 12
    while at < len(data):
        kind, (size,) = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])
        chunks[kind] = data[at + 8 : at + 8 + size]
        at += 8 + size + (size & 1)  # chunks are padded to an even length
    return chunks


def info_entries(list_chunk: bytes) -> dict[bytes, bytes]:
    assert list_chunk[:4] == b"INFO"
    entries, at = {}, 4
    while at < len(list_chunk):
        kind, (size,) = list_chunk[at : at + 4], struct.unpack("<I", list_chunk[at + 4 : at + 8])
        entries[kind] = list_chunk[at + 8 : at + 8 + size].rstrip(b"\x00")
        at += 8 + size + (size & 1)
    return entries


# ---- PNG --------------------------------------------------------------------------------------------


def test_one_image_is_a_png_with_provenance_in_a_text_chunk(tmp_path: Path) -> None:
    pixels = images(1)
    path = tmp_path / "one.png"
    assert writers.write(Images(pixels), str(path), PROVENANCE, default_stem="x") == [str(path)]
    data = path.read_bytes()
    assert png_provenance(data) == PROVENANCE
    with Image.open(path) as image:
        assert (image.size, image.mode) == ((7, 5), "RGB")
        assert np.array_equal(np.asarray(image), pixels[0])


def test_grey_images_stay_grey(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    writers.write(Images(images(1, c=1)), str(path), PROVENANCE, default_stem="x")
    with Image.open(path) as image:
        assert image.mode == "L" and image.size == (7, 5)


def test_several_images_make_one_near_square_grid(tmp_path: Path) -> None:
    pixels = images(5, h=4, w=4)
    path = tmp_path / "grid.png"
    writers.write(Images(pixels), str(path), PROVENANCE, default_stem="x")
    with Image.open(path) as image:
        grid = np.asarray(image)
    pad = 2
    assert grid.shape == (2 * (4 + pad) + pad, 3 * (4 + pad) + pad, 3)  # 5 images: 3 columns, 2 rows
    for i in range(5):
        row, col = divmod(i, 3)
        y, x = pad + row * (4 + pad), pad + col * (4 + pad)
        assert np.array_equal(grid[y : y + 4, x : x + 4], pixels[i])
    assert (grid[:pad] == 128).all()
    wide = writers.grid(pixels, columns=5)
    assert wide.shape[:2] == (4 + 2 * pad, 5 * (4 + pad) + pad)


def test_i_in_the_path_writes_one_file_per_image(tmp_path: Path) -> None:
    pixels = images(3)
    written = writers.write(Images(pixels), str(tmp_path / "img_{i}.png"), PROVENANCE, default_stem="x")
    assert written == [str(tmp_path / f"img_{i}.png") for i in range(3)]
    for i, name in enumerate(written):
        data = Path(name).read_bytes()
        assert png_provenance(data) == {**PROVENANCE, "index": i}
        with Image.open(name) as image:
            assert np.array_equal(np.asarray(image), pixels[i])


# ---- SVG --------------------------------------------------------------------------------------------


def strokes() -> Strokes:
    line = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 1], [3, -2, 0], [2, 2, 0], [1, 1, 1]], dtype=np.float32)
    return Strokes([line, line * 2])


def test_strokes_are_an_svg_with_provenance_in_its_metadata(tmp_path: Path) -> None:
    path = tmp_path / "hand.svg"
    writers.write(strokes(), str(path), PROVENANCE, default_stem="x")
    root = ET.fromstring(path.read_bytes())  # well-formed despite '<', '&' and quotes in the provenance
    ns = {"svg": "http://www.w3.org/2000/svg"}
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert json.loads(root.find("svg:metadata", ns).text) == PROVENANCE
    assert len(root.findall(".//svg:path", ns)) == 4  # two pen-down strokes per line
    png = tmp_path / "hand.png"
    writers.write(strokes(), str(png), PROVENANCE, default_stem="x")
    assert png_provenance(png.read_bytes()) == PROVENANCE


def test_stacked_lines_never_overlap_even_when_ink_rises_above_the_start() -> None:
    rising = np.array([[0, 0, 0], [2, -8, 0], [2, 8, 1], [4, 0, 0], [1, 3, 1]], dtype=np.float32)  # a tall letter
    polylines, _ = writers.stroke_paths(Strokes([rising, rising]), line_gap=1.5)
    first, second = polylines[:2], polylines[2:]
    lowest_of_first = max(y for poly in first for _, y in poly)
    highest_of_second = min(y for poly in second for _, y in poly)
    height = lowest_of_first - min(y for poly in first for _, y in poly)
    assert highest_of_second - lowest_of_first == pytest.approx(0.75 * height)  # line_gap / 2 line heights


# ---- WAV --------------------------------------------------------------------------------------------


def test_audio_is_16_bit_pcm_wav_with_a_list_info_comment(tmp_path: Path) -> None:
    rate, length = 8000, 800
    samples = np.stack([np.sin(np.linspace(0, 60, length)), np.linspace(-2, 2, length)]).astype(np.float32)
    samples[1, 10] = np.nan
    path = tmp_path / "clip.wav"
    writers.write(Audio(samples, rate), str(path), PROVENANCE, default_stem="x")
    chunks = riff_chunks(path.read_bytes())
    audio_format, channels, sample_rate, _, _, bits = struct.unpack("<HHIIHH", chunks[b"fmt "][:16])
    assert (audio_format, channels, sample_rate, bits) == (1, 1, rate, 16)  # PCM, mono, 16-bit
    assert json.loads(info_entries(chunks[b"LIST"])[b"ICMT"]) == PROVENANCE
    gap = int(rate * 0.25)
    assert len(chunks[b"data"]) == (2 * length + gap) * 2  # two clips and the silence between them
    data, read_rate = soundfile.read(path, dtype="float32")
    info = soundfile.info(path)
    assert (info.subtype, read_rate, info.channels) == ("PCM_16", rate, 1)
    assert np.abs(data).max() <= 1.0 and np.isfinite(data).all()  # clipped, NaN made silent
    assert np.allclose(data[:length], samples[0], atol=1e-4)
    assert (data[length : length + gap] == 0).all()


def test_audio_with_i_writes_one_wav_per_clip(tmp_path: Path) -> None:
    written = writers.write(Audio(np.zeros((2, 100), np.float32), 16000), str(tmp_path / "c{i}.wav"),
                            PROVENANCE, default_stem="x")
    assert len(written) == 2
    for i, name in enumerate(written):
        assert soundfile.info(name).frames == 100
        assert json.loads(info_entries(riff_chunks(Path(name).read_bytes())[b"LIST"])[b"ICMT"])["index"] == i


# ---- stdout: pipes and terminals ---------------------------------------------------------------------


@pytest.mark.parametrize(("output", "magic"), [
    (Images(images(2)), PNG_SIGNATURE), (Audio(np.zeros((1, 50), np.float32), 8000), b"RIFF"),
    (strokes(), b"<svg"),
])
def test_binary_output_goes_down_a_pipe(output, magic: bytes) -> None:
    for destination in (None, "-"):
        pipe = FakeStdout(tty=False)
        assert writers.write(output, destination, PROVENANCE, default_stem="x", stdout=pipe) == ["-"]
        assert pipe.data().startswith(magic)


@pytest.mark.parametrize("output", [Images(images(1)), Audio(np.zeros((1, 50), np.float32), 8000), strokes()])
def test_binary_output_is_never_written_to_a_terminal(output) -> None:
    terminal = FakeStdout(tty=True)
    with pytest.raises(UsageError, match="refusing to write .* to a terminal"):
        writers.write(output, "-", PROVENANCE, default_stem="x", stdout=terminal)
    modality = {Images: "image", Audio: "audio", Strokes: "strokes"}[type(output)]
    with pytest.raises(UsageError, match="to a terminal"):
        writers.check_destination(modality, "-", stdout=terminal)
    assert terminal.data() == b""


def test_at_a_terminal_without_o_binary_output_goes_to_a_new_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    terminal = FakeStdout(tty=True)
    first = writers.write(Images(images(1)), None, PROVENANCE, default_stem="dcgan", stdout=terminal)
    second = writers.write(Images(images(1)), None, PROVENANCE, default_stem="dcgan", stdout=terminal)
    assert (first, second) == (["dcgan.png"], ["dcgan-1.png"])  # never overwrites an earlier sample
    assert terminal.data() == b""


def test_text_streams_chunk_by_chunk_to_stdout_even_at_a_terminal() -> None:
    terminal = FakeStdout(tty=True)
    seen: list[bytes] = []

    def chunks():
        for piece in ("The ", "quick ", "fox"):
            seen.append(terminal.data())  # what a reader had seen before this chunk was generated
            yield piece

    assert writers.write(Text(chunks()), None, PROVENANCE, default_stem="x", stdout=terminal) == ["-"]
    assert seen == [b"", b"The ", b"The quick "]
    assert terminal.data() == b"The quick fox\n"


@pytest.mark.parametrize(("modality", "destination", "message"), [
    ("image", "out.jpg", "written as .png"),
    ("audio", "out.mp3", "written as .wav"),
    ("strokes", "out.pdf", "written as .svg or .png"),
    ("text", "out.png", "not written as .png"),
    ("text", "out_{i}.txt", "{i}"),
    ("image", "no/such/dir/out.png", "does not exist"),
    ("text", "", "needs a file name"),
])
def test_destinations_are_checked_before_any_work(modality, destination, message) -> None:
    with pytest.raises(UsageError, match=message.replace("{", r"\{").replace("}", r"\}")):
        writers.check_destination(modality, destination, stdout=FakeStdout(tty=False))


# ---- end to end, with the fake image plugin -------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory) -> Path:
    import torch

    sys.path.insert(0, str(FAKES))
    try:
        from gencli_fake_good import Config, plugin
    finally:
        sys.path.remove(str(FAKES))
    from gencli.weights import save_model

    model = plugin.build(Config(size=4))
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    folder = tmp_path_factory.mktemp("fakeimg")
    save_model(folder, plugin, model, Config(size=4))
    return folder


def test_cli_writes_a_grid_png(fake_weights: Path, tmp_path: Path) -> None:
    env = gencli_env(PYTHONPATH=str(FAKES))  # the broken fake plugins are installed too, and do not matter
    path = tmp_path / "grid.png"
    process = run_gencli("sample", "fakeimg", "--weights", str(fake_weights), "-n", "4", "--seed", "3",
                         "-o", str(path), "--brightness", "0.5", env=env)
    assert process.returncode == 0, process.stderr
    assert process.stdout == b"" and process.stderr.strip() == f"wrote {path}"
    provenance = png_provenance(path.read_bytes())
    assert provenance["plugin"] == "fakeimg" and provenance["seed"] == 3
    assert provenance["options"] == {"brightness": 0.5, "pattern": "noise", "gain": []}
    assert provenance["weights"] == f"local:{fake_weights.resolve()}"
    with Image.open(path) as image:
        assert image.size == (2 * 6 + 2, 2 * 6 + 2)  # 2 x 2 grid of 4-pixel images


def test_a_list_option_is_a_repeatable_flag(fake_weights: Path, tmp_path: Path) -> None:
    env = gencli_env(PYTHONPATH=str(FAKES))
    path = tmp_path / "red.png"
    process = run_gencli("sample", "fakeimg", "--weights", str(fake_weights), "-n", "1", "--pattern", "flat",
                         "-o", str(path), "--gain", "2", "--gain", "0", "--gain", "0", env=env)
    assert process.returncode == 0, process.stderr
    assert png_provenance(path.read_bytes())["options"]["gain"] == [2.0, 0.0, 0.0]
    with Image.open(path) as image:
        assert image.getpixel((0, 0)) == (255, 0, 0)  # flat 0.5 grey: red doubled, green and blue zeroed
    bad = run_gencli("sample", "fakeimg", "--weights", str(fake_weights), "--gain", "x", "-o", str(path), env=env)
    assert bad.returncode == 2 and "--gain" in bad.stderr


@pytest.fixture
def fake_plugins_here(monkeypatch):
    """The fake plugins installed in this process (entry points are read from sys.path)."""
    from gencli import registry

    monkeypatch.syspath_prepend(str(FAKES))
    registry.discover.cache_clear()
    yield
    registry.discover.cache_clear()


def test_cli_pipes_png_and_writes_one_file_per_image(fake_plugins_here, fake_weights, tmp_path, monkeypatch):
    from gencli.cli import main

    def gencli(*args: str) -> tuple[int, bytes]:
        pipe = FakeStdout(tty=False)
        monkeypatch.setattr(sys, "stdout", pipe)
        with pytest.raises(SystemExit) as exit_:
            main(["sample", "fakeimg", "--weights", str(fake_weights), "-q", *args])
        return exit_.value.code, pipe.data()

    code, data = gencli("--seed", "3")
    assert code == 0 and png_provenance(data)["seed"] == 3
    assert gencli("--seed", "3") == (0, data)  # seeded: the same bytes again
    code, files = gencli("-n", "3", "-o", str(tmp_path / "img_{i}.png"), "--pattern", "flat")
    assert code == 0 and files == b""
    for i in range(3):
        with Image.open(tmp_path / f"img_{i}.png") as image:
            assert image.size == (4, 4) and set(np.asarray(image).ravel()) == {128}  # flat grey
def test_cli_refuses_png_to_a_terminal() -> None:
    env = gencli_env(PYTHONPATH=str(FAKES))
    code, output = run_in_pty(["sample", "fakeimg", "--weights", "unused", "-o", "-"], env)
    assert code == 2
    assert_one_error_line(output.decode().replace("\r\n", "\n"), "refusing to write PNG to a terminal")
