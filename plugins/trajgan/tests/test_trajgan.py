"""trajgan: the simulator's limits, CSV data and --given, a tiny training step, the CLI's outputs, the contract."""

from __future__ import annotations

import dataclasses
import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

from gencli import trajectories, writers  # noqa: E402
from gencli.errors import UsageError  # noqa: E402
from gencli.plugin import SampleRequest, Trajectories  # noqa: E402
from gencli.testing import PluginContract  # noqa: E402
from gencli_trajgan import Config, SampleOptions, TrainOptions, plugin, simulator  # noqa: E402

TINY = {"hidden_size": 16, "d_hidden": 8, "mixtures": 2, "frames": 12}  # 12 frames: quick to simulate
PROVENANCE = {"plugin": "trajgan", "weights": "test", "seed": 0, "gencli_version": "0"}
SVG = "{http://www.w3.org/2000/svg}"


class TestTrajGANContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_train_options = {"adversarial_plays": 4}
    tiny_eval_options = {"samples": 20, "classifier_steps": 5}

    def test_training_lowers_the_loss(self) -> None:
        """The combined scalar is a game's value; what must hold: the generator's likelihood terms and the
        discriminator's own loss each fall when that player trains on the combined scalar."""
        for player, key in (("generator", "likelihood_nll"), ("discriminator", "d_loss")):
            model, prepared, options = self._model()
            losses = self._train_on_one_batch(model, prepared, options, getattr(model, player).parameters(),
                                              metric=key, batch_size=8)
            assert losses[-1] < losses[0] * 0.9, f"{key} went {losses[0]:.4f} -> {losses[-1]:.4f}"


# ---- the simulator ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plays() -> simulator.SimulatedPlays:
    return simulator.simulate(300, seed=7)


def test_simulated_players_respect_speed_acceleration_and_the_court(plays) -> None:
    players = plays.positions[:, :, :5]  # (N, T, P, 2)
    velocity = np.diff(players, axis=1) * simulator.RATE  # (N, T-1, P, 2) ft/s
    acceleration = np.diff(velocity, axis=1) * simulator.RATE
    assert np.linalg.norm(velocity, axis=-1).max() <= simulator.MAX_SPEED + 1e-9
    assert np.linalg.norm(acceleration, axis=-1).max() <= simulator.MAX_ACCELERATION + 1e-6
    assert 5.0 < np.linalg.norm(velocity, axis=-1).mean() < 12.0  # they do move, at a jog on average
    assert (players >= 0).all() and (players <= np.array(simulator.COURT)).all()
    ball = plays.positions[:, :, 5]
    assert (ball >= 0).all() and (ball <= np.array(simulator.COURT)).all()


def test_simulated_goals_are_distinct_and_change_and_the_ball_is_passed(plays) -> None:
    goals = plays.goals  # (N, T, P)
    assert all(len(set(frame)) == 5 for play in goals for frame in play)  # no two players head for one spot
    assert (np.diff(goals, axis=1) != 0).sum(axis=(1, 2)).mean() > 5  # macro-goals change during a play
    # The ball is near a different player at different times: passes happen.
    near = np.linalg.norm(plays.positions[:, :, :5] - plays.positions[:, :, 5:6], axis=-1).argmin(-1)  # (N, T)
    assert np.mean([len(set(play)) > 1 for play in near]) > 0.8
    assert plays.roles == ["player 1", "player 2", "player 3", "player 4", "player 5", "ball"]


def test_other_team_sizes(plays) -> None:
    three = simulator.simulate(4, seed=1, players=3)
    assert three.positions.shape == (4, simulator.FRAMES, 4, 2) and three.goals.shape == (4, simulator.FRAMES, 3)
    config = plugin.prepare(None, Config(**TINY, agents=3), TrainOptions()).config
    assert config.roles == ["player 1", "player 2", "player 3", "ball"]


# ---- CSV data --------------------------------------------------------------------------------------------


def write_csv(path: Path, positions: np.ndarray, roles: list[str], rate: float | None = None) -> None:
    """Rows as `-o play.csv` writes them (a sidecar with the rate when ``rate`` is given)."""
    path.write_bytes(trajectories.csv_bytes(Trajectories(positions, roles)))
    if rate is not None:
        path.with_name(path.name + ".json").write_text(json.dumps({"frame_rate_hz": rate}))


def test_csv_data_at_another_rate_is_resampled_into_windows(tmp_path: Path, plays) -> None:
    # Three 8 s plays at 25 Hz (4x the model's rate): 200 frames each -> 50 frames at 6.25 Hz.
    fine = np.stack([trajectories.resample(play, 6.25, 25.0) for play in plays.positions[:3]])
    assert fine.shape[1] == 197  # (50 - 1) * 4 + 1
    path = tmp_path / "tracking.csv"
    write_csv(path, fine, plays.roles, rate=25.0)
    config = Config(**{**TINY, "macro_goals": "off", "frames": 20})
    prepared = plugin.prepare(str(path), config, TrainOptions())
    assert prepared.config.roles == plays.roles and prepared.config.agents == 5 and prepared.config.goal_count == 0
    units, goals, _ = prepared.data.batch(torch.Generator().manual_seed(0), 4)
    assert units.shape == (4, 20, 6, 2) and goals.numel() == 0
    assert "3 sequences" in prepared.description


@pytest.mark.parametrize(("config", "rows", "message"), [
    ({"macro_goals": "off", "frames": 50}, 20, "sequence 1 lasts 20 frames at 6.25 Hz .* shorter than the 50-frame"),
    ({"macro_goals": "off", "frames": 10, "court_width": 30.0}, 20, r"outside the declared 47 x 30 court"),
    ({"macro_goals": "on", "frames": 10}, 20, "no macro-goals; train with --macro-goals off"),
])
def test_bad_csv_data_gives_one_line(tmp_path: Path, plays, config: dict, rows: int, message: str) -> None:
    path = tmp_path / "short.csv"
    write_csv(path, plays.positions[:1, :rows], plays.roles)
    with pytest.raises(UsageError, match=message) as error:
        plugin.prepare(str(path), Config(**{**TINY, **config}), TrainOptions())
    assert "\n" not in str(error.value)


# ---- a tiny model: training step, sampling, --given ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> tuple:
    torch.manual_seed(0)
    prepared = plugin.prepare(None, Config(**TINY), TrainOptions())
    model = plugin.build(prepared.config).eval()
    return model, prepared


def test_a_training_step_moves_both_players(tiny) -> None:
    _, prepared = tiny
    model = plugin.build(prepared.config)
    optimizer = plugin.configure_optimizer(model, 1e-3, TrainOptions())
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss, metrics = plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(0), 8), TrainOptions())
    loss.backward()
    optimizer.step()
    assert {"d_loss", "g_loss", "move_nll", "goal_nll", "first_nll"} <= set(metrics)
    moved = {name.split(".")[0] for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {"generator", "discriminator"}


def test_macro_goals_off_trains_and_samples_without_a_goal_policy() -> None:
    prepared = plugin.prepare(None, Config(**{**TINY, "macro_goals": "off"}), TrainOptions())
    model = plugin.build(prepared.config)
    assert prepared.config.goal_count == 0 and model.generator.macro is None
    _, metrics = plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(0), 4), TrainOptions())
    assert "goal_nll" not in metrics and "d_loss" in metrics
    with torch.inference_mode():
        out = plugin.sample(model.eval(), prepared.config, SampleOptions(), SampleRequest(2, 0, torch.device("cpu")))
    assert out.positions.shape == (2, TINY["frames"], 6, 2)


def test_likelihood_only_has_no_discriminator_terms(tiny) -> None:
    model, prepared = tiny
    options = TrainOptions(adversarial_weight=0.0)
    _, metrics = plugin.loss(model, prepared.data.batch(torch.Generator().manual_seed(0), 4), options)
    assert "d_loss" not in metrics and "move_nll" in metrics


def test_given_frames_are_kept_unchanged(tmp_path: Path, tiny, plays) -> None:
    model, prepared = tiny
    path = tmp_path / "first.csv"
    write_csv(path, plays.positions[:1], plays.roles)
    given = trajectories.read_csv(path).sequences[0]
    options = SampleOptions(given=path, given_frames=10, frames=30)  # longer than the 12-frame window
    with torch.inference_mode():
        out = plugin.sample(model, prepared.config, options, SampleRequest(3, 1, torch.device("cpu")))
    assert out.positions.shape == (3, 30, 6, 2)
    for play in out.positions:
        np.testing.assert_array_equal(play[:10], given[:10])
    assert not np.allclose(out.positions[0, 10:], out.positions[1, 10:])  # the continuations differ


@pytest.mark.parametrize(("options", "message"), [
    ({"given_frames": 60}, "fewer than --given-frames 60"),
    ({"given_frames": 12, "frames": 12}, "leaves nothing to generate"),
])
def test_bad_given_gives_one_line(tmp_path: Path, tiny, plays, options: dict, message: str) -> None:
    model, prepared = tiny
    path = tmp_path / "first.csv"
    write_csv(path, plays.positions[:1], plays.roles)
    with pytest.raises(UsageError, match=message):
        plugin.sample(model, prepared.config, SampleOptions(given=path, **options),
                      SampleRequest(1, 1, torch.device("cpu")))


def test_given_with_other_agents_is_refused(tmp_path: Path, tiny, plays) -> None:
    model, prepared = tiny
    path = tmp_path / "other.csv"
    write_csv(path, plays.positions[:1, :, :3], ["a", "b", "c"])
    with pytest.raises(UsageError, match="its agents are a, b, c; this model moves player 1"):
        plugin.sample(model, prepared.config, SampleOptions(given=path), SampleRequest(1, 1, torch.device("cpu")))


# ---- the CLI with a tiny run folder ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny) -> Path:
    from gencli import weights

    model, prepared = tiny
    folder = tmp_path_factory.mktemp("trajgan-run")
    weights.save_model(folder, plugin, model, prepared.config)
    return folder


def test_sample_writes_svg_gif_and_csv_through_the_cli(tmp_path: Path, tiny_run: Path) -> None:
    svg, gif, csv = tmp_path / "play.svg", tmp_path / "play.gif", tmp_path / "play.csv"
    for path in (svg, gif, csv):
        process = run_gencli("sample", "trajgan", "--weights", str(tiny_run), "--seed", "1", "-o", str(path), "-q")
        assert process.returncode == 0, process.stderr
    root = ElementTree.parse(svg).getroot()
    paths = root.findall(f".//{SVG}g[@class='agents']/{SVG}path")
    assert len(paths) == 6 and json.loads(root.find(f"{SVG}metadata").text)["seed"] == 1
    with Image.open(gif) as animation:
        assert animation.n_frames == TINY["frames"]  # one frame per time step
    read = trajectories.read_csv(csv)
    assert read.rate == 6.25 and len(read.sequences) == 1 and read.sequences[0].shape == (TINY["frames"], 6, 2)
    # The same seed gives the same play in every format.
    first = [float(v) for v in paths[0].get("d")[1:].split(" L")[0].split(",")]
    np.testing.assert_allclose(first, read.sequences[0][0, 0], atol=0.01)


def test_sample_given_through_the_cli(tmp_path: Path, tiny_run: Path, plays) -> None:
    given = tmp_path / "first.csv"
    writers.write(Trajectories(plays.positions[:1], plays.roles), str(given), PROVENANCE, default_stem="x")
    out = tmp_path / "more.csv"
    process = run_gencli("sample", "trajgan", "--weights", str(tiny_run), "--given", str(given), "--given-frames",
                         "10", "-n", "2", "--frames", "20", "-o", str(out), "-q")
    assert process.returncode == 0, process.stderr
    continued = trajectories.read_csv(out).sequences
    original = trajectories.read_csv(given).sequences[0]
    assert len(continued) == 2 and all(np.array_equal(play[:10], original[:10]) for play in continued)


def test_bad_given_csv_is_one_error_line(tmp_path: Path, tiny_run: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sequence,frame,agent,x\n0,0,ball,1\n")
    process = run_gencli("sample", "trajgan", "--weights", str(tiny_run), "--given", str(bad), "-o",
                         str(tmp_path / "x.svg"))
    assert process.returncode != 0 and "Traceback" not in process.stderr
    assert process.stderr.strip().splitlines() == [f"gencli: error: --given {bad}: missing column y (the header "
                                                   "must name sequence,frame,agent,x,y)"]
    assert not (tmp_path / "x.svg").exists()


def test_evaluate_reports_the_model_beside_held_out_plays_and_the_random_walk(tiny, tiny_run: Path) -> None:
    process = run_gencli("evaluate", "trajgan", "--weights", str(tiny_run), "--samples", "40", "--classifier-steps",
                         "30", "--json")
    assert process.returncode == 0, process.stderr
    metrics = json.loads(process.stdout)["metrics"]
    for name in ("held_out", "model", "random_walk"):
        assert {f"{name}_speed_ft_s", f"{name}_distance_ft", f"{name}_out_of_bounds"} <= set(metrics)
    assert metrics["held_out_out_of_bounds"] == 0.0
    # The random walk takes the held-out plays' step lengths, so its speed is theirs (up to sampling).
    assert metrics["random_walk_speed_ratio"] == pytest.approx(1.0, abs=0.05)
    assert 0.0 <= metrics["model_classifier_accuracy"] <= 1.0 and metrics["plays"] == 40


def test_an_untrained_model_fails_the_bundled_acceptance(tiny) -> None:
    """The statistics can tell: a model that has not learnt moves too far, too jerkily or off the court."""
    from gencli_trajgan.evaluation import movement_statistics
    from gencli_trajgan.sampling import generate_feet

    model, prepared = tiny
    with torch.inference_mode():
        feet = generate_feet(model, prepared.config, 50, 50, torch.Generator().manual_seed(0))
    real = movement_statistics(simulator.simulate(50, 3).positions, prepared.config.roles, simulator.COURT, 6.25)
    fake = movement_statistics(feet, prepared.config.roles, simulator.COURT, 6.25)
    assert (abs(fake["speed_ft_s"] / real["speed_ft_s"] - 1) > 0.2 or fake["out_of_bounds"] > 0.05
            or fake["acceleration_ft_s2"] > 2 * real["acceleration_ft_s2"])


def test_config_round_trips_through_json(tiny) -> None:
    _, prepared = tiny
    again = Config(**json.loads(json.dumps(dataclasses.asdict(prepared.config))))
    assert again == prepared.config


@pytest.mark.skipif(not (plugin.bundled_weights / "model.safetensors").is_file(), reason="no bundled weights")
def test_bundled_model_writes_an_svg_and_a_gif(tmp_path: Path) -> None:
    """Acceptance: `gencli sample trajgan --seed 1 -o play.svg` (one path per agent) and `-o play.gif` (one
    frame per time step), both read back."""
    for name in ("play.svg", "play.gif"):
        process = run_gencli("sample", "trajgan", "--seed", "1", "-o", str(tmp_path / name), "-q")
        assert process.returncode == 0, process.stderr
    root = ElementTree.parse(tmp_path / "play.svg").getroot()
    paths = root.findall(f".//{SVG}g[@class='agents']/{SVG}path")
    assert [p.get("data-agent") for p in paths] == ["player 1", "player 2", "player 3", "player 4", "player 5", "ball"]
    with Image.open(tmp_path / "play.gif") as animation:
        assert animation.n_frames == 50
        assert json.loads(animation.info["comment"])["seed"] == 1
