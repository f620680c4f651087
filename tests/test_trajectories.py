"""Trajectories through the core writers: SVG court diagram, animated GIF, CSV with its sidecar, and back."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gencli import trajectories, writers
from gencli.errors import UsageError
from gencli.plugin import Trajectories

PROVENANCE = {"plugin": "trajgan", "weights": "test", "seed": 1, "gencli_version": "0"}
SVG = "{http://www.w3.org/2000/svg}"
ROLES = ["ball", "p1", "p2", "p3"]


def plays(n: int = 2, frames: int = 12, agents: int = 4) -> Trajectories:
    rng = np.random.default_rng(0)
    start = rng.uniform([5, 5], [40, 45], size=(n, 1, agents, 2))  # (N, 1, A, 2)
    steps = rng.normal(0, 0.5, size=(n, frames - 1, agents, 2))  # (N, T-1, A, 2)
    positions = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)  # (N, T, A, 2)
    return Trajectories(np.clip(positions, 0, [47, 50]), ROLES[:agents], (47.0, 50.0), 6.25)


def test_svg_has_one_path_per_agent_per_play_and_marks_the_ends(tmp_path: Path) -> None:
    output = plays(n=2)
    path = tmp_path / "plays.svg"
    assert writers.write(output, str(path), PROVENANCE, default_stem="x") == [str(path)]
    root = ElementTree.parse(path).getroot()
    assert json.loads(root.find(f"{SVG}metadata").text) == PROVENANCE
    panels = root.findall(f"{SVG}g[@class='play']")
    assert len(panels) == 2
    for panel in panels:
        agents = panel.find(f"{SVG}g[@class='agents']")
        paths = agents.findall(f"{SVG}path")
        assert [p.get("data-agent") for p in paths] == ROLES
        dashed = [p.get("data-agent") for p in paths if p.get("stroke-dasharray")]
        assert dashed == ["ball"]
        starts, ends = agents.findall(f"{SVG}circle[@class='start']"), agents.findall(f"{SVG}circle[@class='end']")
        assert len(starts) == len(ends) == 4
        assert len(panel.find(f"{SVG}g[@class='court']")) > 10  # the half court's lines
    first = panels[0].find(f"{SVG}g[@class='agents']/{SVG}path").get("d")
    x, y = (float(v) for v in first[1:].split(" L")[0].split(","))
    assert (x, y) == pytest.approx(tuple(output.positions[0, 0, 0]), abs=0.01)


def test_gif_has_one_frame_per_time_step_and_the_provenance(tmp_path: Path) -> None:
    output = plays(n=3, frames=9)
    output.positions[:, 3:6] = output.positions[:, 3:4]  # nobody moves for three frames: still three frames
    path = tmp_path / "play.gif"
    writers.write(output, str(path), PROVENANCE, default_stem="x")
    with Image.open(path) as gif:
        assert gif.n_frames == 9
        assert json.loads(gif.info["comment"]) == PROVENANCE
        assert gif.info["duration"] == 160  # 6.25 frames a second
        gif.seek(8)


def test_csv_round_trip_with_sidecar(tmp_path: Path) -> None:
    output = plays(n=2, frames=7)
    path = tmp_path / "play.csv"
    writers.write(output, str(path), PROVENANCE, default_stem="x")
    header, first = path.read_text().splitlines()[:2]
    assert header == "sequence,frame,agent,x,y" and first.startswith("0,0,ball,")
    sidecar = json.loads((tmp_path / "play.csv.json").read_text())
    assert sidecar["frame_rate_hz"] == 6.25 and sidecar["plugin"] == "trajgan" and sidecar["court"] == [47, 50]
    back = trajectories.read_csv(path)
    assert back.agents == ROLES and back.rate == 6.25
    np.testing.assert_allclose(np.stack(back.sequences), output.positions, atol=6e-4)


def test_csv_refuses_to_replace_a_foreign_sidecar(tmp_path: Path) -> None:
    (tmp_path / "play.csv.json").write_text("{}")
    with pytest.raises(UsageError, match="not written by gencli"):
        writers.check_destination("trajectories", str(tmp_path / "play.csv"))
    assert (tmp_path / "play.csv.json").read_text() == "{}"


def test_one_file_per_play_and_stdout_is_svg(tmp_path: Path) -> None:
    written = writers.write(plays(n=2), str(tmp_path / "play-{i}.csv"), PROVENANCE, default_stem="x")
    assert written == [str(tmp_path / "play-0.csv"), str(tmp_path / "play-1.csv")]
    assert json.loads((tmp_path / "play-1.csv.json").read_text())["index"] == 1
    stdout = io.BytesIO()
    assert writers.write(plays(n=1), "-", PROVENANCE, default_stem="x", stdout=stdout) == ["-"]
    assert stdout.getvalue().startswith(b"<svg")


def test_binary_never_to_a_terminal() -> None:
    class Terminal(io.BytesIO):
        def isatty(self) -> bool:
            return True

    with pytest.raises(UsageError, match="terminal"):
        writers.check_destination("trajectories", "-", Terminal())
    with pytest.raises(UsageError, match="terminal"):
        writers.write(plays(n=1), "-", PROVENANCE, default_stem="x", stdout=Terminal())
    with pytest.raises(UsageError, match=r"\.svg or \.gif or \.csv"):
        writers.check_destination("trajectories", "play.png")


@pytest.mark.parametrize(("text", "message"), [
    ("sequence,frame,agent,x\n0,0,a,1\n", "missing column y"),
    ("sequence,frame,agent,x,y\n0,0,a,1,two\n0,1,a,1,2\n", "line 2: frame must be a whole number and x, y numbers"),
    ("sequence,frame,agent,x,y\n0,0,a,1,2\n0,0,b,1,2\n", "single frame"),
    ("sequence,frame,agent,x,y\n0,0,a,1,2\n0,1,a,1,2\n0,1,b,1,2\n0,0,b,3,3\n0,2,a,1,1\n", "no row for agent 'b'"),
    ("sequence,frame,agent,x,y\n0,0,a,1,2\n0,2,a,1,2\n", "skips frame 1"),
    ("sequence,frame,agent,x,y\n", "no rows"),
])
def test_bad_csv_gives_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as error:
        trajectories.read_csv(path)
    assert "\n" not in str(error.value)


def test_resampling_keeps_the_time_span_and_interpolates() -> None:
    track = np.stack([np.arange(26.0), np.zeros(26)], axis=1)[:, None, :]  # (26, 1, 2): 1 ft a frame at 25 Hz
    out = trajectories.resample(track, 25.0, 6.25)  # one second = 6.25 frames
    assert out.shape == (7, 1, 2)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(7) * 4.0)
    assert trajectories.resample(track, 25.0, 25.0).shape == track.shape


def test_positions_outside_the_court_give_one_line(tmp_path: Path) -> None:
    plays_read = trajectories.Plays([np.array([[[1.0, 2.0]], [[60.0, 2.0]]])], ["a"], None)
    with pytest.raises(UsageError, match=r"agent 'a' is at \(60, 2\) in frame 1, outside the declared 47 x 50"):
        trajectories.check_inside(plays_read, (47.0, 50.0), "x.csv")


def test_a_gif_too_large_to_hold_is_refused_before_drawing(tmp_path: Path) -> None:
    huge = Trajectories(np.full((400, 50, 2, 2), 10.0), ["ball", "p1"])  # 400 courts x 50 frames
    with pytest.raises(UsageError, match="write fewer plays"):
        writers.write(huge, str(tmp_path / "huge.gif"), PROVENANCE, default_stem="x")
    assert not (tmp_path / "huge.gif").exists()


def test_a_folder_or_device_is_not_read(tmp_path: Path) -> None:
    for path in (tmp_path, Path("/dev/zero")):
        with pytest.raises(UsageError, match="not a regular file"):
            trajectories.read_csv(path, flag="--given")
