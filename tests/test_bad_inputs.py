"""Hostile input files from the fuzz campaign of issue 20: refused or skipped at once, with one clear line."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencli.data import images
from gencli.errors import UsageError


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A few hundred bytes whose header claims width x height grayscale pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_a_clear_error_for_an_input_image(tmp_path: Path) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", 20_000, 20_000)
    with pytest.raises(UsageError, match=r"bomb.png: not a readable image \(far more than the 50 million pixels"):
        images.load_image(bomb, 28, 1)
    big = png_claiming(tmp_path / "big.png", 10_000, 10_000)  # under PIL's own limit, over ours
    with pytest.raises(UsageError, match=r"big.png: not a readable image \(10,000 x 10,000 pixels is more than"):
        images.load_image(big, 28, 1)


def test_a_decompression_bomb_in_a_data_folder_is_skipped(tmp_path: Path, capsys) -> None:
    png_claiming(tmp_path / "bomb.png", 20_000, 20_000)
    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(tmp_path / "good.png")
    loaded = images.load_folder(str(tmp_path), size=8)
    assert loaded.pixels.shape == (1, 1, 8, 8)
    assert "skipped 1 unreadable or oversized image file(s)" in capsys.readouterr().err
    (tmp_path / "good.png").unlink()
    with pytest.raises(UsageError, match="none of the 1 image file"):
        images.load_folder(str(tmp_path), size=8)


def test_an_image_just_under_the_limit_still_opens(tmp_path: Path) -> None:
    path = png_claiming(tmp_path / "wide.png", images.MAX_IMAGE_PIXELS // 10, 10)
    with images.open_image(path) as image:  # the header alone: no pixels are decoded here
        assert image.size == (images.MAX_IMAGE_PIXELS // 10, 10)


def test_a_folder_of_1_hz_wav_files_is_refused_at_once(tmp_path: Path, capsys) -> None:
    soundfile = pytest.importorskip("soundfile")
    audio = pytest.importorskip("gencli_wavenet.audio")
    for name in ("a.wav", "b.wav"):  # 200 samples at 1 Hz: resampled to 16 kHz they would be 3.2 M samples each
        soundfile.write(str(tmp_path / name), np.zeros(200, dtype=np.float32), 1, subtype="PCM_16")
    with pytest.raises(UsageError, match="none of the 2 audio file"):
        audio.load_folder(tmp_path, 16000)
    assert "below 1,000 Hz" in capsys.readouterr().err


def test_a_gan_refuses_a_batch_of_one_in_one_line(capsys, tmp_path: Path) -> None:
    """Found by tests/fuzz_cli.py: --batch-size 1 reached batch normalisation and ended in an internal error."""
    from test_cli import assert_one_error_line, gencli_inprocess

    code, out, err = gencli_inprocess(capsys, "train", "gan", "--preset", "tiny", "--steps", "1", "--batch-size", "1",
                                      "--out", str(tmp_path / "run"), "-q")
    assert code == 2 and out == ""
    assert_one_error_line(err, "--batch-size 1", "at least 2 images")
