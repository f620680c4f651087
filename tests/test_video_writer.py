"""Clips (short videos) through the core writers: animated GIF grids, PNG strips, one PNG per frame."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from test_writers import PROVENANCE, FakeStdout, png_provenance

from gencli import writers
from gencli.errors import UsageError
from gencli.plugin import Clips

PAD = 2  # the grid's gutter, as for images


def moving_clips(n: int, t: int = 6, h: int = 8, w: int = 10, c: int = 3) -> np.ndarray:
    """(n, t, h, w, c): a bright square that moves one pixel a frame, so no two frames are the same."""
    frames = np.zeros((n, t, h, w, c), np.uint8)
    for i in range(n):
        frames[i] += np.uint8(20 * i)
        for step in range(t):
            frames[i, step, 1:3, step : step + 2] = 250
    return frames


def gif_frames(data: bytes) -> tuple[Image.Image, list[np.ndarray]]:
    gif = Image.open(io.BytesIO(data))
    return gif, [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]


def test_clips_are_an_animated_gif_that_loops_with_provenance_in_its_comment(tmp_path: Path) -> None:
    path = tmp_path / "clip.gif"
    assert writers.write(Clips(moving_clips(1), fps=10), str(path), PROVENANCE, default_stem="x") == [str(path)]
    gif, frames = gif_frames(path.read_bytes())
    assert gif.format == "GIF" and gif.is_animated and gif.n_frames == 6
    assert gif.size == (10, 8)
    assert gif.info["loop"] == 0  # forever
    assert all(frame.info["duration"] == 100 for frame in ImageSequence.Iterator(Image.open(path)))
    assert json.loads(gif.info["comment"]) == PROVENANCE
    assert np.abs(frames[2].astype(int) - moving_clips(1)[0, 2]).max() <= 8  # one shared palette, near-exact


def test_n_clips_tile_into_one_animated_grid(tmp_path: Path) -> None:
    path = tmp_path / "grid.gif"
    writers.write(Clips(moving_clips(4, t=5), fps=4, columns=None), str(path), PROVENANCE, default_stem="x")
    gif, frames = gif_frames(path.read_bytes())
    assert gif.n_frames == 5
    assert gif.size == (2 * (10 + PAD) + PAD, 2 * (8 + PAD) + PAD)  # 2 x 2, with a gutter
    assert Image.open(path).info["duration"] == 250
    # The fourth clip sits bottom right: its frame 3 has the moved square there.
    bottom_right = frames[3][PAD + 8 + PAD :, PAD + 10 + PAD :][:8, :10]
    assert np.abs(bottom_right.astype(int) - moving_clips(4, t=5)[3, 3]).max() <= 8


def test_grey_clips_stay_grey_and_fps_rounds_to_gif_hundredths(tmp_path: Path) -> None:
    path = tmp_path / "grey.gif"
    writers.write(Clips(moving_clips(1, c=1), fps=8), str(path), PROVENANCE, default_stem="x")
    gif, frames = gif_frames(path.read_bytes())
    assert gif.n_frames == 6 and gif.info["duration"] == 130  # 125 ms rounds to 13 hundredths
    np.testing.assert_array_equal(frames[4][..., 0], moving_clips(1, c=1)[0, 4, ..., 0])


def test_a_png_name_or_strip_gives_one_row_of_frames_per_clip(tmp_path: Path) -> None:
    clips = moving_clips(3, t=4)
    path = tmp_path / "strip.png"
    writers.write(Clips(clips, fps=5), str(path), PROVENANCE, default_stem="x")
    strip = np.asarray(Image.open(path))
    assert strip.shape == (3 * (8 + PAD) + PAD, 4 * (10 + PAD) + PAD, 3)
    row, col = 2, 1  # clip 2, frame 1
    y, x = PAD + row * (8 + PAD), PAD + col * (10 + PAD)
    np.testing.assert_array_equal(strip[y : y + 8, x : x + 10], clips[2, 1])
    assert png_provenance(path.read_bytes()) == {**PROVENANCE, "fps": 5}
    pipe = FakeStdout(tty=False)
    writers.write(Clips(clips, fps=5), "-", PROVENANCE, default_stem="x", stdout=pipe, strip=True)
    assert pipe.data() == path.read_bytes()


def test_t_in_the_path_writes_one_png_per_frame_and_i_one_file_per_clip(tmp_path: Path) -> None:
    clips = moving_clips(2, t=3)
    written = writers.write(Clips(clips), str(tmp_path / "f{t}.png"), PROVENANCE, default_stem="x")
    assert written == [str(tmp_path / f"f{t}.png") for t in range(3)]
    assert png_provenance((tmp_path / "f2.png").read_bytes())["frame"] == 2
    assert np.asarray(Image.open(tmp_path / "f0.png")).shape == (8 + 2 * PAD, 2 * (10 + PAD) + PAD, 3)

    written = writers.write(Clips(clips), str(tmp_path / "c{i}-{t}.png"), PROVENANCE, default_stem="x")
    assert len(written) == 6 and written[4] == str(tmp_path / "c1-1.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c1-1.png")), clips[1, 1])
    meta = png_provenance((tmp_path / "c1-1.png").read_bytes())
    assert (meta["index"], meta["frame"]) == (1, 1)

    written = writers.write(Clips(clips), str(tmp_path / "clip{i}.gif"), PROVENANCE, default_stem="x")
    assert written == [str(tmp_path / "clip0.gif"), str(tmp_path / "clip1.gif")]
    gif = Image.open(tmp_path / "clip1.gif")
    assert gif.n_frames == 3 and json.loads(gif.info["comment"])["index"] == 1


def test_scale_enlarges_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "big.gif"
    writers.write(Clips(moving_clips(1)), str(path), PROVENANCE, default_stem="x", scale=3)
    assert Image.open(path).size == (30, 24)


def test_clips_are_never_written_to_a_terminal_and_go_down_a_pipe() -> None:
    terminal = FakeStdout(tty=True)
    for strip in (False, True):
        with pytest.raises(UsageError, match="to a terminal"):
            writers.write(Clips(moving_clips(1)), "-", PROVENANCE, default_stem="x", stdout=terminal, strip=strip)
        with pytest.raises(UsageError, match="to a terminal"):
            writers.check_destination("video", "-", stdout=terminal, strip=strip)
    assert terminal.data() == b""
    pipe = FakeStdout(tty=False)
    assert writers.write(Clips(moving_clips(1)), None, PROVENANCE, default_stem="x", stdout=pipe) == ["-"]
    assert pipe.data().startswith(b"GIF89a")


def test_at_a_terminal_without_o_clips_go_to_a_new_gif(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    terminal = FakeStdout(tty=True)
    first = writers.write(Clips(moving_clips(1)), None, PROVENANCE, default_stem="videogan", stdout=terminal)
    second = writers.write(Clips(moving_clips(1)), None, PROVENANCE, default_stem="videogan", stdout=terminal,
                           strip=True)
    assert (first, second) == (["videogan.gif"], ["videogan.png"])


@pytest.mark.parametrize(("destination", "strip", "message"), [
    ("out.wav", False, "written as .gif or .png"),
    ("out.gif", True, "--strip writes a PNG strip"),
    ("f{t}.gif", False, "one PNG per frame"),
    ("missing/out.gif", False, "does not exist"),
])
def test_clip_destinations_are_checked_before_any_work(tmp_path, monkeypatch, destination, strip, message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=message):
        writers.check_destination("video", destination, strip=strip)


def test_replacing_a_gif_keeps_its_mode_and_refuses_a_read_only_one(tmp_path: Path) -> None:
    path = tmp_path / "old.gif"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    writers.write(Clips(moving_clips(1)), str(path), PROVENANCE, default_stem="x")
    assert path.read_bytes().startswith(b"GIF89a") and (path.stat().st_mode & 0o777) == 0o640
    os.chmod(path, 0o440)
    with pytest.raises(UsageError, match="read-only"):
        writers.write(Clips(moving_clips(1)), str(path), PROVENANCE, default_stem="x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.gif"]  # no temporary file left behind


def test_malformed_clips_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"uint8 \(N, T, H, W, 1\|3\)"):
        writers.write(Clips(np.zeros((2, 3, 4, 4), np.uint8)), "-", PROVENANCE, default_stem="x",
                      stdout=FakeStdout(tty=False))
