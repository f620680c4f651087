"""`--input PATH|DIR|-` for plugins that declare ``image_input`` (gencli.plugin.ImageInput), through the real CLI
with the image-to-image test plugin in tests/imageinput (its weights the identity, so each output is its input)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_one_error_line

from gencli import inputs
from gencli.plugin import ImageInput

PLUGIN_DIR = Path(__file__).parent / "imageinput"


class Pipe(io.TextIOWrapper):
    """A text stream over bytes that is not a terminal (stdin or stdout of a pipeline)."""

    def __init__(self, data: bytes = b"") -> None:
        super().__init__(io.BytesIO(data), encoding="utf-8", write_through=True)

    def isatty(self) -> bool:
        return False

    def data(self) -> bytes:
        return self.buffer.getvalue()


@pytest.fixture
def gencli(monkeypatch, tmp_path_factory, capsys):
    """Run `gencli sample fakeimg2img --weights IDENTITY ARGS` in this process: (exit code, stdout bytes, stderr)."""
    import torch

    from gencli import registry
    from gencli.cli import main
    from gencli.weights import save_model

    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    registry.discover.cache_clear()
    from gencli_fake_img2img import Config, plugin

    model = plugin.build(Config())
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    weights = tmp_path_factory.mktemp("identity")
    save_model(weights, plugin, model, Config())

    def run(*args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
        out = Pipe()
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stdin", Pipe(stdin or b""))
        with pytest.raises(SystemExit) as exit_:
            main(["sample", "fakeimg2img", "--weights", str(weights), *args])
        return exit_.value.code, out.data(), capsys.readouterr().err

    yield run
    registry.discover.cache_clear()


def photo(h: int = 6, w: int = 9, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8).squeeze(-1 if channels == 1
                                                                                                 else ())


def save(path: Path, pixels: np.ndarray, **options) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def read(path_or_bytes) -> tuple[np.ndarray, dict]:
    with Image.open(io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes) as image:
        return np.asarray(image), json.loads(image.info["gencli"])


def test_a_file_becomes_one_output_with_its_input_in_the_provenance(gencli, tmp_path):
    source = save(tmp_path / "cat.png", photo())
    code, _, err = gencli("--input", str(source), "-o", str(tmp_path / "out.png"))
    assert code == 0, err
    pixels, provenance = read(tmp_path / "out.png")
    assert np.array_equal(pixels, photo())
    assert provenance["input"] == {"name": "cat.png", "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    assert provenance["plugin"] == "fakeimg2img"


def test_a_folder_maps_to_an_output_folder_and_to_stem_paths(gencli, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, name in enumerate(["b.png", "a.jpg"]):
        save(folder / name, photo(seed=i))
    (folder / "notes.txt").write_text("not an image")
    code, _, err = gencli("--input", str(folder), "-o", str(tmp_path / "big") + "/", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "big").iterdir()) == ["a.png", "b.png"]
    assert np.array_equal(read(tmp_path / "big" / "b.png")[0], photo(seed=0))
    assert read(tmp_path / "big" / "a.png")[1]["input"]["name"] == "a.jpg"
    code, _, err = gencli("--input", str(folder), "-o", str(tmp_path / "{stem}-up.png"), "-q")
    assert code == 0, err
    assert (tmp_path / "a-up.png").is_file() and (tmp_path / "b-up.png").is_file()


@pytest.mark.parametrize("output, fragment", [
    (None, "-o OUT/"), ("-", "one image each"), ("one.png", "put {stem} in the name"),
    ("missing/{stem}.png", "does not exist"), ("{stem}.jpg", "written as .png")])
def test_a_folder_needs_a_folder_or_stem_output(gencli, tmp_path, output, fragment):
    folder = tmp_path / "photos"
    folder.mkdir()
    save(folder / "a.png", photo())
    code, _, err = gencli("--input", str(folder), *(["-o", str(tmp_path / output) if output != "-" else "-"]
                                                    if output else []))
    assert code == 2
    assert_one_error_line(err, fragment)


def test_a_png_on_stdin_goes_to_stdout(gencli, tmp_path):
    data = save(tmp_path / "x.png", photo(channels=1)).read_bytes()  # greyscale in, RGB (declared) out
    code, out, err = gencli("--input", "-", stdin=data)
    assert code == 0, err
    pixels, provenance = read(out)
    assert pixels.shape == (6, 9, 3) and np.array_equal(pixels[..., 1], photo(channels=1))
    assert provenance["input"] == {"name": "-", "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("stdin, fragment", [(b"", "stdin is empty"), (b"GIF89a....", "does not hold a PNG or JPEG")])
def test_bad_stdin_is_one_error_line(gencli, stdin, fragment):
    code, out, err = gencli("--input", "-", stdin=stdin)
    assert code == 2 and out == b""
    assert_one_error_line(err, fragment)


def test_exif_rotation_is_applied(gencli, tmp_path):
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :40] = 255  # left half white, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: show the stored image rotated 90 degrees clockwise
    source = save(tmp_path / "portrait.jpg", pixels, exif=exif.tobytes(), quality=95)
    code, _, err = gencli("--input", str(source), "-o", str(tmp_path / "out.png"))
    assert code == 0, err
    upright = read(tmp_path / "out.png")[0]
    assert upright.shape == (80, 40, 3)  # stood up
    assert upright[:35].mean() > 230 and upright[45:].mean() < 25  # the stored left half is now on top


def test_transparency_is_kept_apart_from_the_colours(gencli, tmp_path):
    rgba = photo(channels=4)
    rgba[0, 0, 3] = 0
    source = save(tmp_path / "logo.png", rgba)
    code, _, err = gencli("--input", str(source), "-o", str(tmp_path / "out.png"))
    assert code == 0, err
    assert np.array_equal(read(tmp_path / "out.png")[0], rgba)  # RGBA out: colours mapped, alpha as it came


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    values = np.array([[0, 4000, 65535]], dtype=np.uint16)
    pixels, alpha = inputs.channels_of(Image.fromarray(values), channels=None)
    assert pixels.shape == (1, 3, 1) and alpha is None
    assert pixels[0, :, 0].tolist() == [0, 16, 255]


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(gencli, tmp_path):
    source = save(tmp_path / "wide.png", photo(50, 300))  # 15,000 pixels; the plugin allows 10,000
    code, _, err = gencli("--input", str(source), "-o", str(tmp_path / "out.png"))
    assert code == 2
    assert_one_error_line(err, "wide.png", "more than")
    assert not (tmp_path / "out.png").exists()


def test_a_decompression_bomb_is_refused(tmp_path):
    """A 100,000 x 100,000 header in a few bytes: Pillow's own bomb check fires before ours."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    with pytest.raises(inputs.UsageError, match="bomb.png: not a readable image .*far more than"):
        inputs.find_inputs(str(bomb), ImageInput())


@pytest.mark.parametrize("content", [b"these bytes are no picture", b"truncated"])
def test_an_unreadable_input_is_one_error_line(gencli, tmp_path, content):
    source = tmp_path / "broken.png"
    good = save(tmp_path / "good.png", photo(20, 20)).read_bytes()
    source.write_bytes(good[: len(good) // 2] if content == b"truncated" else content)
    code, _, err = gencli("--input", str(source), "-o", str(tmp_path / "out.png"))
    assert code == 2
    assert_one_error_line(err, "--input", "broken.png", "not a readable image")


def test_an_output_never_replaces_an_input(gencli, tmp_path):
    source = save(tmp_path / "a.png", photo())
    before = source.read_bytes()
    code, _, err = gencli("--input", str(source), "-o", str(source))
    assert code == 2
    assert_one_error_line(err, "refusing to overwrite an input")
    code, _, err = gencli("--input", str(tmp_path), "-o", str(tmp_path) + "/")
    assert code == 2
    assert_one_error_line(err, "refusing to overwrite an input")
    assert source.read_bytes() == before


def test_two_inputs_with_one_stem_are_refused(gencli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "x.png", photo())
    save(folder / "x.jpg", photo())
    code, _, err = gencli("--input", str(folder), "-o", str(tmp_path / "out") + "/")
    assert code == 2
    assert_one_error_line(err, "x.jpg", "x.png", "would both be written")
    assert not (tmp_path / "out").exists()  # nothing made before the checks passed


def test_the_plugins_own_scale_replaces_the_viewing_flag_and_input_is_required(gencli, tmp_path):
    source = save(tmp_path / "a.png", photo())
    code, _, err = gencli("--input", str(source), "--scale", "3", "-n", "2", "-o", str(tmp_path / "s{i}.png"))
    assert code == 0, err
    assert read(tmp_path / "s1.png")[0].shape == (18, 27, 3)
    code, _, err = gencli("-o", str(tmp_path / "none.png"))
    assert code == 2
    assert_one_error_line(err, "fakeimg2img works on an image", "--input")
    code, _, err = gencli("--input", str(tmp_path / "missing.png"))
    assert code == 2
    assert_one_error_line(err, "missing.png", "no such file")
