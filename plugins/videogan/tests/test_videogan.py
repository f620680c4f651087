"""videogan: the two-stream generator, one training step, the moving-digits data, --data folders, the contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

from gencli.errors import UsageError  # noqa: E402
from gencli.plugin import Clips, SampleRequest  # noqa: E402
from gencli.testing import PluginContract  # noqa: E402
from gencli_videogan import Config, SampleOptions, TrainOptions, plugin  # noqa: E402
from gencli_videogan import evaluation, model, moving_digits, networks  # noqa: E402
from gencli_videogan.folders import load_clips  # noqa: E402
from gencli_videogan.networks import compose  # noqa: E402

TINY = {"z_dim": 8, "g_width": 4, "d_width": 4, "frames": 8, "image_size": 16}


class TestVideoGANContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_eval_options = {"clips": 16, "classifier_steps": 5}
    # The full game from the first step: in the object warm-up a generator facing a fixed, untrained object
    # critic has nothing to learn but to close its mask (the warm-up has its own tests below).
    tiny_train_options = {"object_warmup": 0}

    def test_training_lowers_the_loss(self) -> None:
        """A GAN's combined loss is a game's value; each player, trained while the other stays fixed, must
        lower its own loss instead."""
        for player, key in (("discriminator", "d_loss"), ("generator", "g_loss")):
            net, prepared, options = self._model()
            losses = self._train_on_one_batch(net, prepared, options, getattr(net, player).parameters(),
                                              metric=key, batch_size=8)
            assert losses[-1] < losses[0] * 0.9, f"{key} went {losses[0]:.4f} -> {losses[-1]:.4f}"


def tiny_model(**changes: object) -> model.VideoGANPair:
    torch.manual_seed(0)
    return model.build(Config(**{**TINY, **changes}))


# ---- the generator -----------------------------------------------------------------------------------------


def test_generator_parts_have_the_paper_shapes_and_the_mask_lies_in_0_1() -> None:
    net = tiny_model().eval()
    with torch.no_grad():
        foreground, mask, background = net.generator.parts(torch.randn(3, 8))
        clip = net.generator(torch.randn(3, 8))
    assert foreground.shape == (3, 3, 8, 16, 16) and mask.shape == (3, 1, 8, 16, 16)
    assert background.shape == (3, 3, 16, 16)  # one image: the background stream has no time axis
    assert float(mask.min()) >= 0 and float(mask.max()) <= 1
    assert clip.shape == (3, 3, 8, 16, 16) and float(clip.abs().max()) <= 1


def test_the_clip_is_mask_times_foreground_plus_the_rest_background() -> None:
    net = tiny_model().eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        foreground, mask, background = net.generator.parts(z)
    expected = mask * foreground + (1 - mask) * background[:, :, None]
    with torch.no_grad():
        torch.testing.assert_close(net.generator(z), expected)
    # Where the mask is 0 the clip is the background, the same in every frame.
    still = compose(foreground, torch.zeros_like(mask), background)
    assert torch.equal(still, background[:, :, None].expand_as(still))
    assert torch.equal(still[:, :, 0], still[:, :, -1])


def test_the_background_stream_gives_every_frame_the_same_background() -> None:
    net = tiny_model().eval()
    with torch.no_grad():  # force the mask to 0: the clip is then the background stream's output alone
        net.generator.foreground.heads.weight[3].zero_()
        net.generator.foreground.heads.bias[3] = -50.0
        clip, _, mask, background = net.generate_parts(torch.randn(2, 8))
    assert float(mask.max()) < 1e-20
    for t in range(clip.shape[2]):
        torch.testing.assert_close(clip[:, :, t], background, atol=1e-6, rtol=0)


def test_one_training_step_moves_both_players_and_reports_its_metrics() -> None:
    net = tiny_model()
    prepared = model.prepare(None, net_config := Config(**TINY), TrainOptions())
    assert prepared.config.training_data == "moving-digits" and net_config.frames == 8
    optimizer = model.configure_optimizer(net, 1e-3)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    loss, metrics = model.loss(net, prepared.data.batch(torch.Generator().manual_seed(0), 4), TrainOptions())
    loss.backward()
    optimizer.step()
    moved = {name.split(".")[0] for name, p in net.named_parameters() if not torch.equal(p, before[name])}
    assert moved == {"generator", "discriminator"}
    assert set(metrics) >= {"d_loss", "g_loss", "d_real_acc", "d_fake_acc", "mask_mean"}
    assert 0 < metrics["mask_mean"] < 1


def test_the_foreground_object_keeps_inside_the_frame_and_moves_at_a_constant_speed_between_walls() -> None:
    net = tiny_model().eval()  # 8 frames of 16 x 16: an 8 x 8 sprite, its corner in [0, 8]
    with torch.no_grad():
        path = net.generator.foreground.path(torch.randn(64, 8) * 3)  # (B, T, 2)
    assert path.shape == (64, 8, 2) and float(path.min()) >= 0 and float(path.max()) <= 8
    step = path.diff(dim=1).abs()  # (B, T-1, 2)
    assert float(step.max()) <= networks.MAX_SPEED * 16 / 32 + 1e-5
    assert float(path.diff(dim=1).norm(dim=-1).mean()) > 0.1  # it does move
    # Each axis moves by the same amount every frame, but for a step that meets a wall (one that starts or ends
    # closer to a wall than that amount).
    longest = step.amax(dim=1, keepdim=True).expand_as(step)
    low, high = torch.minimum(path[:, 1:], path[:, :-1]), torch.maximum(path[:, 1:], path[:, :-1])
    free = (low >= longest) & (high <= 8 - longest)
    assert free.float().mean() > 0.3
    torch.testing.assert_close(step[free], longest[free], atol=1e-4, rtol=0)
    folded = networks.reflect(torch.tensor([-1.0, 3.0, 9.0, 17.0, 19.0]), 8.0)
    assert folded.tolist() == [1.0, 3.0, 7.0, 1.0, 3.0]


def test_a_sprite_is_pasted_at_its_corner_and_nowhere_else() -> None:
    sprite = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    corners = torch.tensor([[[0.0, 0.0], [2.0, 5.0], [6.0, 1.0]]])  # (1, T=3, 2): integer corners (y, x)
    canvas = networks.place(sprite, corners, 10)  # (1, 1, 3, 10, 10)
    assert canvas.shape == (1, 1, 3, 10, 10)
    for t, (y, x) in enumerate(corners[0].int().tolist()):
        frame = canvas[0, 0, t]
        torch.testing.assert_close(frame[y:y + 4, x:x + 4], sprite[0, 0])
        assert float(frame.abs().sum()) == pytest.approx(float(sprite.sum()))  # nothing outside the sprite


def foreground_along(head_frame: str, corners: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The tiny foreground stream's (f, m) for one fixed z, its sprite moved along the given corners."""
    stream = tiny_model(head_frame=head_frame).eval().generator.foreground
    stream.path = lambda z: corners.expand(z.shape[0], -1, -1)  # type: ignore[method-assign]
    with torch.no_grad():
        return stream(torch.randn(2, 8, generator=torch.Generator().manual_seed(1)))


# Whole-pixel corners (y, x) of an 8 x 8 sprite in a 16 x 16 frame, 8 frames: speeds and directions that change,
# as they do at a bounce.
JUMPY_PATH = torch.tensor([[[2.0, 2.0], [2.0, 5.0], [4.0, 6.0], [3.0, 4.0], [5.0, 1.0], [6.0, 3.0], [4.0, 7.0],
                            [1.0, 5.0]]])


def test_in_the_sprite_frame_every_frame_shows_the_same_drawing_shifted_along_the_path() -> None:
    foreground, mask = foreground_along("sprite", JUMPY_PATH)  # (2, 3, 8, 16, 16), (2, 1, 8, 16, 16)
    y0, x0 = JUMPY_PATH[0, 0].int().tolist()
    for t, (y, x) in enumerate(JUMPY_PATH[0].int().tolist()):
        torch.testing.assert_close(foreground[:, :, t, y:y + 8, x:x + 8], foreground[:, :, 0, y0:y0 + 8, x0:x0 + 8])
        torch.testing.assert_close(mask[:, :, t, y:y + 8, x:x + 8], mask[:, :, 0, y0:y0 + 8, x0:x0 + 8])
        outside = torch.ones(16, 16, dtype=torch.bool)
        outside[y:y + 8, x:x + 8] = False
        assert float(mask[:, :, t][..., outside].abs().max()) == 0  # the mask is held to the footprint
    assert float(mask.std()) > 0 and float(foreground[:, :, 0, y0:y0 + 8, x0:x0 + 8].std()) > 0  # a real drawing
    # The first bundled model's layout (the heads over the moved sprite) draws each frame differently.
    canvas_foreground, _ = foreground_along("canvas", JUMPY_PATH)
    first, second = canvas_foreground[:, :, 0, 2:10, 2:10], canvas_foreground[:, :, 1, 2:10, 5:13]
    assert float((first - second).abs().max()) > 1e-3


def test_an_unknown_head_frame_is_one_clear_error() -> None:
    with pytest.raises(UsageError, match="head_frame"):
        tiny_model(head_frame="world")


def test_the_discriminators_judge_whole_clips_and_every_fourth_frame() -> None:
    net = tiny_model().eval()
    clips = torch.rand(3, 3, 8, 16, 16) * 2 - 1
    with torch.no_grad():
        clip_logits, frame_logits, _ = net.discriminator(clips)
        assert clip_logits.shape == (3,) and frame_logits.shape == (3 * 8 // networks.FRAME_STRIDE,)
        # The frame discriminator sees frames 0 and 4 of each clip, in clip order.
        torch.testing.assert_close(frame_logits[2:4], net.discriminator.frame(clips[1, :, ::4].transpose(0, 1)))


def test_sizes_that_are_not_multiples_of_8_are_refused() -> None:
    with pytest.raises(UsageError, match="multiple of 8"):
        model.build(Config(**{**TINY, "frames": 12}))


# ---- sampling --------------------------------------------------------------------------------------------


def test_parts_put_clip_foreground_mask_and_background_side_by_side() -> None:
    net = tiny_model().eval()
    request = SampleRequest(2, 1, torch.device("cpu"))
    with torch.inference_mode():
        plain = model.sample(net, Config(**TINY), SampleOptions(), request)
        parts = model.sample(net, Config(**TINY), SampleOptions(parts=True), request)
    assert isinstance(parts, Clips) and parts.columns == 4
    assert plain.frames.shape == (2, 8, 16, 16, 3) and parts.frames.shape == (8, 8, 16, 16, 3)
    np.testing.assert_array_equal(parts.frames[0], plain.frames[0])  # the clip itself comes first
    mask = parts.frames[2]
    assert (mask[..., 0] == mask[..., 1]).all()  # the mask is shown grey
    background = parts.frames[3]
    assert (background == background[:1]).all()  # the background does not move


# ---- the embedded data -------------------------------------------------------------------------------------


def test_bounce_reflects_at_the_walls_and_keeps_the_speed() -> None:
    path = moving_digits.bounce(np.array([5.0, 2.0]), np.array([-2.0, 3.0]), 12, 10.0)
    assert (path >= 0).all() and (path <= 10).all()
    step = np.diff(path, axis=0)
    assert step[0, 0] < 0 and (step[:, 0] > 0).any()  # y heads up, then bounces back down
    assert step[0, 1] > 0 and (step[:, 1] < 0).any()  # x heads right, then bounces back left
    free = np.abs(step).max(axis=0)
    np.testing.assert_allclose(free, [2.0, 3.0])  # away from the walls, the constant velocity


def test_digits_stay_inside_the_frame_and_bounce() -> None:
    batch = moving_digits.make_clips(np.random.default_rng(3), 40, frames=24, size=32, digits=2)
    limit = 32 - 16
    assert batch.frames.shape == (40, 24, 32, 32, 3) and batch.positions.shape == (40, 24, 2, 2)
    assert (batch.positions >= 0).all() and (batch.positions <= limit).all()
    velocity = np.diff(batch.positions, axis=1)  # (N, T-1, D, 2)
    flips = np.sign(velocity[:, 1:]) * np.sign(velocity[:, :-1]) < 0
    assert flips.any(axis=(1, 2, 3)).mean() > 0.5  # most clips see a bounce in 24 frames
    # Constant speed: a step is as long as the clip's longest along each axis, or shorter where it hits a wall.
    speeds = np.abs(velocity)
    longest = speeds.max(axis=1, keepdims=True)
    assert (speeds <= longest + 1e-9).all()
    assert np.isclose(speeds, longest).mean() > 0.8


def test_the_background_is_static_and_only_the_digit_moves() -> None:
    batch = moving_digits.make_clips(np.random.default_rng(0), 8, frames=16, size=32, digits=1)
    for i in range(8):
        covered = np.zeros((32, 32), bool)  # every pixel the digit's square passes over
        for y, x in np.rint(batch.positions[i, :, 0]).astype(int):
            covered[y : y + 16, x : x + 16] = True
        frames = batch.frames[i]
        assert (frames[:, ~covered] == batch.background[i][~covered]).all()
        assert (frames != frames[:1]).any()  # and the clip does change


def test_clips_depend_only_on_the_generator_and_the_labels_are_digits() -> None:
    prepared = model.prepare(None, Config(**TINY), TrainOptions())
    a, za, la = prepared.data.batch(torch.Generator().manual_seed(1), 4)
    b, zb, lb = prepared.data.batch(torch.Generator().manual_seed(1), 4)
    assert torch.equal(a, b) and torch.equal(za, zb) and torch.equal(la, lb) and a.dtype == torch.uint8
    # The batch's labels are its clips' digit classes: the same draw made directly gives the same ones.
    again = moving_digits.make_clips(moving_digits.rng_from(torch.Generator().manual_seed(1)), 4,
                                     frames=TINY["frames"], size=TINY["image_size"])
    assert torch.equal(la, torch.from_numpy(again.labels))
    unlabelled = model.prepare(None, Config(**TINY), TrainOptions(labels=False))
    assert len(unlabelled.data.batch(torch.Generator().manual_seed(1), 4)) == 2
    batch = moving_digits.make_clips(np.random.default_rng(0), 50, split="test")
    assert set(batch.labels) <= set(range(10)) and len(set(batch.labels)) > 5


# ---- --data folders ----------------------------------------------------------------------------------------


def write_frames(folder: Path, count: int, size: tuple[int, int] = (20, 20), skip: int | None = None) -> None:
    folder.mkdir(parents=True)
    for t in range(count + (skip is not None)):
        if t == skip:
            continue
        Image.fromarray(np.full((size[1], size[0], 3), 10 * t % 256, np.uint8)).save(folder / f"frame_{t:03d}.png")


def test_a_folder_of_frame_folders_and_gifs_is_cut_into_clips(tmp_path: Path) -> None:
    write_frames(tmp_path / "a", 20)
    gif = [Image.fromarray(np.full((12, 12, 3), 20 * t, np.uint8)) for t in range(9)]
    gif[0].save(tmp_path / "b.gif", save_all=True, append_images=gif[1:], duration=100)
    clips = load_clips(str(tmp_path), 16, 8)
    assert clips.shape == (3, 8, 16, 16, 3)  # b.gif: 1 clip of its 9 frames; a/: 2 clips of its 20 frames
    assert clips[0, :, 0, 0, 0].tolist() == [20 * t for t in range(8)]  # the GIF, frames in order
    assert clips[2, :, 0, 0, 0].tolist() == [10 * t for t in range(8, 16)]  # a/'s second clip


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: write_frames(root / "v", 9, skip=4), "skips from frame 3 to 5"),
    (lambda root: (write_frames(root / "v", 9), Image.fromarray(np.zeros((8, 9, 3), np.uint8)).save(
        root / "v" / "frame_009.png")), "is 9x8, but frame_000.png is 20x20"),
    (lambda root: write_frames(root / "v", 5), "has 5 frame\\(s\\), fewer than --frames 8"),
    (lambda root: None, "no videos there"),
])
def test_bad_frame_folders_are_one_clear_error(tmp_path: Path, make, message) -> None:
    root = tmp_path / "videos"
    root.mkdir()
    make(root)
    with pytest.raises(UsageError, match=message):
        load_clips(str(root), 16, 8)


def test_the_cli_refuses_a_broken_folder_and_impossible_frame_counts_in_one_line(tmp_path: Path) -> None:
    write_frames(tmp_path / "videos" / "v", 12, skip=2)
    for args, message in (
        (["--data", str(tmp_path / "videos")], "skips from frame 1 to 3"),
        (["--frames", "1"], "--frames"),
        (["--frames", "10000"], "--frames"),
    ):
        process = run_gencli("train", "videogan", "--preset", "tiny", "--steps", "1", "--out",
                             str(tmp_path / "run"), *args)
        assert process.returncode != 0
        lines = process.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gencli: error:") and message in lines[0], process.stderr


# ---- evaluation pieces -------------------------------------------------------------------------------------


def test_motion_and_the_baselines_measure_what_they_say() -> None:
    batch = moving_digits.make_clips(np.random.default_rng(0), 32, split="test")
    real = evaluation.to_unit(batch.frames)
    true_speed = np.linalg.norm(np.diff(batch.positions[:, :, 0], axis=1), axis=-1).mean()
    assert evaluation.motion(real) == pytest.approx(true_speed, rel=0.3)
    generator = torch.Generator().manual_seed(0)
    assert evaluation.motion(evaluation.repeated(real, generator)) == 0
    assert evaluation.motion(evaluation.shuffled(real, generator)) > 2 * evaluation.motion(real)


def test_the_mask_share_of_motion_is_high_when_the_mask_covers_what_moves() -> None:
    batch = moving_digits.make_clips(np.random.default_rng(0), 8, split="test")
    clips = evaluation.to_unit(batch.frames)
    on_digits = (evaluation.foreground_weights(clips) > 0.05).float().unsqueeze(1)  # (N, 1, T, H, W)
    right = evaluation.separation(clips, on_digits)
    blind = evaluation.separation(clips, torch.full_like(on_digits, right["mask_area"]))
    assert right["mask_motion_share"] > 0.9 and right["mask_area"] < 0.3
    assert blind["mask_motion_share"] == pytest.approx(right["mask_area"], rel=1e-4)


def test_a_folder_too_small_to_hold_out_clips_is_refused_before_training(tmp_path: Path) -> None:
    write_frames(tmp_path / "videos" / "v", 80)  # 10 clips of 8 frames: a held-out fifth of 2 is too few
    with pytest.raises(UsageError, match="10 clip\\(s\\) of 8 frames; at least 20 are needed"):
        model.prepare(str(tmp_path / "videos"), Config(**TINY), TrainOptions())


def test_a_conditional_model_animates_a_still_image(tmp_path: Path) -> None:
    config = Config(**{**TINY, "conditional": True})
    torch.manual_seed(0)
    net = model.build(config)
    loss, metrics = model.loss(net, model.prepare(None, config, TrainOptions()).data.batch(
        torch.Generator().manual_seed(0), 4), TrainOptions())
    assert "reconstruction" in metrics and torch.isfinite(loss)
    still = tmp_path / "still.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(still)
    net.eval()
    with torch.inference_mode():
        futures = model.sample(net, config, SampleOptions(from_image=still), SampleRequest(3, 0, torch.device("cpu")))
        assert futures.frames.shape == (3, 8, 16, 16, 3)
        assert (futures.frames[0] != futures.frames[1]).any()  # -n N: N different futures of the same still
        with pytest.raises(UsageError, match="--from-image"):
            model.sample(net, config, SampleOptions(), SampleRequest(1, 0, torch.device("cpu")))
        with pytest.raises(UsageError, match="--conditional"):
            model.sample(tiny_model().eval(), Config(**TINY), SampleOptions(from_image=still),
                         SampleRequest(1, 0, torch.device("cpu")))


def test_training_checkpoints_and_resumes_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = run_gencli("train", "videogan", "--preset", "tiny", "--steps", "2", "--save-every", "1", "--out", str(out),
                       "--threads", "1", "-q")
    assert first.returncode == 0, first.stderr
    resumed = run_gencli("train", "videogan", "--resume", "--steps", "4", "--out", str(out), "--threads", "1", "-q")
    assert resumed.returncode == 0, resumed.stderr
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert steps[-1] == 4 and (out / "model.safetensors").is_file()


def test_temporal_coherence_counts_only_frames_that_show_a_digit() -> None:
    """Noise and a moving non-digit blob score about 0; real clips keep a high figure, and held-still real
    clips (which have no foreground at all) score 0 rather than a free 1."""
    from gencli.data.images import mnist
    from gencli.metrics import digits

    classifier = digits.classifier_for(mnist("train"))
    batch = moving_digits.make_clips(np.random.default_rng(0), 64, split="test")
    real = evaluation.to_unit(batch.frames)
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(real.shape, generator=generator)
    # A bright disc following each digit's path over the same backgrounds: compact and moving, but no digit.
    centres = torch.from_numpy(batch.positions[:, :, 0]).float() + 8  # (N, T, 2)
    pixels = torch.arange(32).float()
    distance = ((pixels[None, None, :, None] - centres[..., 0, None, None]) ** 2
                + (pixels[None, None, None, :] - centres[..., 1, None, None]) ** 2)  # (N, T, H, W)
    disc = torch.exp(-distance / 18).unsqueeze(1)  # (N, 1, T, H, W)
    background = torch.from_numpy(batch.background).permute(0, 3, 1, 2).float().unsqueeze(2) / 255
    blob = disc + (1 - disc) * background
    still = evaluation.repeated(real, generator)
    scores = {name: evaluation.coherence(evaluation.digit_classes(classifier, clips)[1])
              for name, clips in (("real", real), ("noise", noise), ("blob", blob), ("still", still))}
    assert scores["real"] > 0.8, scores
    assert scores["noise"] < 0.05 and scores["blob"] < 0.1 and scores["still"] == 0, scores
    # Without the digit tests every frame of noise gets a class, and that class hardly changes.
    _, labels = digits.embed(classifier, evaluation.digit_views(noise))
    assert evaluation.coherence(labels.view(64, -1)) > 0.5


# ---- the current recipe: whole pixels, replicate padding, the moving critic, the moving average -------------


def test_new_runs_get_the_current_recipe_and_an_old_config_builds_the_old_model() -> None:
    from gencli_videogan import NEW_RUN

    prepared = model.prepare(None, Config(**TINY), TrainOptions(ema_decay=0.99))
    assert all(getattr(prepared.config, key) == value for key, value in NEW_RUN.items())
    assert prepared.config.ema_decay == 0.99
    assert prepared.config.object_width == 2 * TINY["d_width"]  # unless --object-width says otherwise
    assert model.prepare(None, Config(**TINY, object_width=3), TrainOptions()).config.object_width == 3
    new = model.build(prepared.config).state_dict()
    assert any(k.startswith("ema.generator.") for k in new) and any(".moving." in k for k in new)
    old = tiny_model().state_dict()  # a config.json from before these fields: the model its weights were
    assert not any(k.startswith("ema") or ".moving." in k for k in old)
    assert set(old) < set(new)


def test_whole_pixel_paths_round_the_corners_and_pass_the_gradient_through() -> None:
    stream = tiny_model(whole_pixels=True).generator.foreground
    z = torch.randn(16, 8)
    path = stream.path(z)
    assert torch.equal(path.detach(), path.detach().round()) and float(path.min()) >= 0 and float(path.max()) <= 8
    path.sum().backward()  # the rounding does not stop the gradient
    assert float(stream.motion[2].weight.grad.abs().sum()) > 0
    smooth = tiny_model(whole_pixels=False).generator.foreground.path(z)
    assert not torch.equal(smooth, smooth.round())


def test_a_least_speed_keeps_every_sprite_moving_within_the_most() -> None:
    z = torch.randn(256, 8) * 3
    with torch.no_grad():
        free = tiny_model().generator.foreground.path(z)  # an old config: no least speed
        held = tiny_model(min_speed=1.0).generator.foreground.path(z)  # 16 x 16: 0.5 to 1.5 pixels a frame
    speed = lambda path: path.diff(dim=1).norm(dim=-1)  # noqa: E731
    first = lambda path: speed(path)[:, 0]  # noqa: E731  (a first step can meet a wall and be shorter)
    assert float(first(free).min()) < 0.3
    # No wall within the first step: both ends farther from every wall than the longest step (1.5 a frame).
    away = (held[:, :2] > 1.5).all(dim=(1, 2)) & (held[:, :2] < 6.5).all(dim=(1, 2))
    assert float(first(held)[away].min()) >= 0.5 - 1e-5 and away.float().mean() > 0.2
    assert float(held.diff(dim=1).abs().max()) <= networks.MAX_SPEED * 16 / 32 + 1e-5


@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_with_replicate_padding_a_uniform_sprite_draws_a_uniform_mask_to_its_edges(padding: str) -> None:
    stream = tiny_model(sprite_padding=padding).eval().generator.foreground
    corner = torch.tensor([[[4.0, 4.0]]]).expand(1, 8, 2)
    with torch.no_grad():
        _, mask = stream.heads_on_the_sprite(torch.full((1, 2, 8, 8), 0.7), corner)  # (1, 1, 8, 16, 16)
    inside = mask[0, 0, :, 4:12, 4:12]
    edge_versus_middle = float((inside[:, 0] - inside[:, 4]).abs().max())
    if padding == "replicate":
        assert edge_versus_middle < 1e-6  # no square edge the heads can draw
    else:
        assert edge_versus_middle > 1e-4  # zeros beyond the border: the border row differs
    with pytest.raises(UsageError, match="sprite_padding"):
        tiny_model(sprite_padding="mirror")


def test_the_moving_critic_judges_each_judged_frame_minus_the_clips_median() -> None:
    net = tiny_model(moving_critic=True).eval()
    clips = torch.rand(3, 3, 8, 16, 16) * 2 - 1
    with torch.no_grad():
        clip_logits, frame_logits, _ = net.discriminator(clips)
        per_frame = 8 // networks.FRAME_STRIDE
        assert clip_logits.shape == (3,) and frame_logits.shape == (2 * 3 * per_frame,)
        moving = clips[:, :, ::networks.FRAME_STRIDE] - clips.median(dim=2, keepdim=True).values
        torch.testing.assert_close(frame_logits[3 * per_frame:],
                                   net.discriminator.moving(moving.transpose(1, 2).flatten(0, 1)))
        # A clip where nothing moves shows the moving critic nothing, whatever its background.
        still = clips[:, :, :1].expand_as(clips)
        _, still_logits, _ = net.discriminator(still)
        empty = net.discriminator.moving(torch.zeros(3 * per_frame, 3, 16, 16))
        torch.testing.assert_close(still_logits[3 * per_frame:], empty)


def test_the_moving_average_follows_the_generator_and_is_what_sampling_uses() -> None:
    for conditional in (False, True):
        net = tiny_model(ema_decay=0.5, conditional=conditional)
        optimized = {id(p) for group in model.configure_optimizer(net, 1e-3).param_groups for p in group["params"]}
        assert not optimized & {id(p) for p in net.ema.parameters()}  # no optimizer moves the average
        live = net.generator.foreground.heads.weight
        average = net.ema["generator"].foreground.heads.weight
        start = average.detach().clone()
        with torch.no_grad():
            live.add_(1.0)
        net.update_ema()  # the first update warms up: decay min(0.5, 1/10)
        torch.testing.assert_close(average, 0.1 * start + 0.9 * live.detach())
        net.update_ema()  # then decay min(0.5, 2/11)
        torch.testing.assert_close(average, (2 / 11) * (0.1 * start + 0.9 * live.detach()) + (9 / 11) * live.detach())
        assert int(net.ema_updates) == 2
        # Sampling draws from the average, not from the live weights.
        net.eval()
        z, still = torch.randn(2, 8), torch.rand(2, 3, 16, 16) * 2 - 1
        with torch.no_grad():
            live.add_(5.0)
            clip = net.generate_parts(z, still if conditional else None)[0]
            latent = torch.cat([net.ema["encoder"](still), z], 1) if conditional else z
            expected = ((net.ema["generator"](latent) + 1) / 2).clamp(0, 1)
        torch.testing.assert_close(clip, expected)
    # A training step updates it.
    net = tiny_model(ema_decay=0.5)
    prepared = model.prepare(None, Config(**TINY), TrainOptions())
    model.loss(net, prepared.data.batch(torch.Generator().manual_seed(0), 4), TrainOptions())
    assert int(net.ema_updates) == 1


# ---- class-conditional models (--labels) ---------------------------------------------------------------------


def test_new_runs_on_the_embedded_digits_take_their_labels_and_others_none(tmp_path: Path) -> None:
    assert model.prepare(None, Config(**TINY), TrainOptions()).config.classes == 10
    assert model.prepare(None, Config(**TINY), TrainOptions(labels=False)).config.classes == 0
    # Two digits a clip: "the clip's class" is not defined.
    assert model.prepare(None, Config(**{**TINY, "digits": 2}), TrainOptions()).config.classes == 0
    for name in "abcde":
        write_frames(tmp_path / name, 40, size=(16, 16))
    assert model.prepare(str(tmp_path), Config(**TINY), TrainOptions()).config.classes == 0
    assert Config().classes == 0  # a config.json from before labels builds the unconditional model


def test_a_class_conditional_generator_draws_the_class_it_is_given() -> None:
    net = tiny_model(classes=10).eval()
    z = torch.randn(1, 8).expand(3, -1)
    labels = torch.tensor([3, 3, 7])
    with torch.no_grad():
        clip, *_ = net.generate_parts(z, None, labels)
    assert torch.allclose(clip[0], clip[1], atol=1e-6)  # (rows of one batch may round differently)
    assert float((clip[0] - clip[2]).abs().max()) > 1e-3  # the label changes the clip
    with pytest.raises(ValueError, match="labels"):
        net.generate_parts(z, None, None)


def test_the_object_critic_sees_the_moving_object_centred_and_names_its_class() -> None:
    net = tiny_model(classes=10, object_critic=True).eval()
    critic = net.discriminator.object
    # One bright 4 x 4 square on black, at two places: centred, both views are the same picture.
    moving = torch.zeros(2, 3, 16, 16)
    moving[0, :, 1:5, 2:6], moving[1, :, 9:13, 10:14] = 1.0, 1.0
    weights = moving.abs().mean(dim=1)
    views = networks.half_frame_windows(moving, networks.centre_of_mass(weights)[0], 8)
    assert views.shape == (2, 3, 8, 8)
    torch.testing.assert_close(views[0], views[1])
    assert abs(float(views[0].sum()) - 48.0) < 1e-4  # the whole square (4 x 4 x 3) inside the window
    with torch.no_grad():
        logits, classes = critic(moving)
        assert classes.shape == (2, 10)
        torch.testing.assert_close(logits[0], logits[1])  # where the object is does not matter...
        torch.testing.assert_close(classes[0], classes[1])  # ...to either head
        # In the discriminators, it judges every judged frame's moving part after the frame critics.
        clips = torch.rand(2, 3, 8, 16, 16) * 2 - 1
        _, frame_logits, class_logits = net.discriminator(clips)
        sampled = clips[:, :, ::networks.FRAME_STRIDE]
        moving = (sampled - networks.static_background(clips)).transpose(1, 2).flatten(0, 1)
        expected_logits, expected_classes = critic(moving)
        torch.testing.assert_close(frame_logits[-4:], expected_logits)
        torch.testing.assert_close(class_logits, expected_classes)
    assert tiny_model(object_critic=True).discriminator.object.classify is None  # unconditional: no class head


def test_a_labelled_training_step_feeds_the_batchs_classes_to_both_players() -> None:
    prepared = model.prepare(None, Config(**TINY), TrainOptions())
    torch.manual_seed(0)
    net = model.build(prepared.config)
    batch = prepared.data.batch(torch.Generator().manual_seed(0), 4)
    total, _ = model.loss(net, batch, TrainOptions())
    total.backward()
    head = net.discriminator.object.classify.weight.grad  # (10, features): the class head learns
    assert bool((head[batch[2]].abs().sum(1) > 0).all())
    # The generator's input weights of the one-hot code: the batch's classes get a gradient, the others none.
    code = net.generator.foreground.project.weight.grad[:, TINY["z_dim"]:]  # (features, 10)
    present = sorted(set(batch[2].tolist()))
    absent = sorted(set(range(10)) - set(present))
    assert bool((code[:, present].abs().sum(0) > 0).all()) and float(code[:, absent].abs().sum()) == 0


def test_label_picks_every_clips_class_and_bad_labels_are_one_clear_error() -> None:
    request = SampleRequest(3, 1, torch.device("cpu"))
    labelled, plain = tiny_model(classes=10).eval(), tiny_model().eval()
    with torch.inference_mode():
        sevens = model.sample(labelled, Config(**TINY, classes=10), SampleOptions(label="7"), request)
        cycled = model.sample(labelled, Config(**TINY, classes=10), SampleOptions(), request)
        z = model.seeded_latents(1, 3, 8)
        expected, *_ = labelled.generate_parts(z, None, torch.tensor([7, 7, 7]))
        first, *_ = labelled.generate_parts(z, None, torch.tensor([0, 1, 2]))
    np.testing.assert_array_equal(sevens.frames, model.to_uint8(expected))
    np.testing.assert_array_equal(cycled.frames, model.to_uint8(first))  # by default clip i shows class i mod 10
    with pytest.raises(UsageError, match="0 to 9"):
        model.sample(labelled, Config(**TINY, classes=10), SampleOptions(label="12"), request)
    with pytest.raises(UsageError, match="unconditional"):
        model.sample(plain, Config(**TINY), SampleOptions(label="7"), request)


def test_label_match_counts_clips_coherent_in_the_class_asked_for() -> None:
    n = evaluation.NO_DIGIT
    classes = torch.tensor([[3] * 10, [3] * 8 + [n] * 2, [5] * 10, [3] * 7 + [n] * 3])  # (4 clips, 10 frames)
    assert evaluation.label_match(classes, torch.tensor([3, 3, 3, 3])) == 0.5  # rows 0 and 1 (80%), not 2, not 3
    assert evaluation.label_match(classes, torch.tensor([3, 3, 5, 3])) == 0.75


def test_class_weight_scales_the_object_critics_class_loss_in_the_generators_objective() -> None:
    prepared = model.prepare(None, Config(**TINY), TrainOptions(object_warmup=0))  # no random placement
    torch.manual_seed(0)
    net = model.build(prepared.config)
    batch = prepared.data.batch(torch.Generator().manual_seed(0), 4)
    g_loss = {w: float(net(*batch[:2], TrainOptions(class_weight=w), batch[2])["g_loss"]) for w in (0.0, 1.0, 3.0)}
    class_loss = g_loss[1.0] - g_loss[0.0]
    assert class_loss > 0.5  # about ln 10 for an untrained class head
    assert abs((g_loss[3.0] - g_loss[0.0]) - 3 * class_loss) < 1e-4


def test_in_the_object_warm_up_the_object_and_frame_critics_judge_then_every_critic_does() -> None:
    options = TrainOptions(object_warmup=1)
    prepared = model.prepare(None, Config(**TINY), options)
    torch.manual_seed(0)
    net = model.build(prepared.config)
    batch = prepared.data.batch(torch.Generator().manual_seed(0), 4)
    judging, reported, moving = [], [], []
    for _ in range(2):
        net.zero_grad(set_to_none=True)
        total, metrics = model.loss(net, batch, options)
        total.backward()
        judging.append({name.split(".")[0] for name, p in net.discriminator.named_parameters()
                        if p.grad is not None and float(p.grad.abs().sum()) > 0})
        reported.append("d_fake_acc" in metrics)
        assert float(net.generator.foreground.project.weight.grad.abs().sum()) > 0  # G learns in both phases
        moving.append(net.generator.foreground.motion[0].weight.grad is not None)
    assert judging == [{"object", "frame"}, {"clip", "frame", "moving", "object"}]
    assert reported == [False, True]  # the clip critic's figures only once it plays
    assert moving == [False, True]  # one frame says nothing of motion: the path learns only from whole clips
    assert int(net.state_dict()["steps_taken"]) == 2  # saved with the weights: a resumed run knows its phase
    assert "steps_taken" not in tiny_model().state_dict()  # models without a warm-up keep their old weights' keys


def test_in_the_warm_up_the_frame_critic_teaches_the_background_and_not_the_object() -> None:
    options = TrainOptions(object_warmup=1, class_weight=0, mask_l1=0)
    prepared = model.prepare(None, Config(**TINY), options)
    torch.manual_seed(0)
    net = model.build(prepared.config)
    with torch.no_grad():  # the object critic's verdict made constant: only the frame critic's reaches G
        net.discriminator.object.real.weight.zero_()
    batch = prepared.data.batch(torch.Generator().manual_seed(0), 4)
    total, _ = model.loss(net, batch, options)
    total.backward()
    foreground = net.generator.foreground
    drawing = [p for module in (foreground.project, foreground.body, foreground.heads) for p in module.parameters()]
    assert all(p.grad is None or float(p.grad.abs().sum()) == 0 for p in drawing)
    assert float(net.generator.bg_project.weight.grad.abs().sum()) > 0
    without = TrainOptions(object_warmup=1, warmup_background=False)  # the object critic alone: the old warm-up
    net.zero_grad(set_to_none=True)
    net.steps_taken.zero_()
    model.loss(net, batch, without)[0].backward()
    assert net.discriminator.frame.net[0].weight.grad is None


def test_the_warm_ups_one_frame_shows_the_clips_drawing_placed_anywhere_over_its_background() -> None:
    prepared = model.prepare(None, Config(**TINY), TrainOptions(object_warmup=1))
    torch.manual_seed(0)
    generator = model.build(prepared.config).generator.eval()
    z = torch.randn(64, TINY["z_dim"] + 10)
    with torch.no_grad():
        foreground, mask, background = generator.parts(z)
        alone_foreground, alone_mask, alone_background = generator.one_frame(z)
    torch.testing.assert_close(alone_background, background)
    # The same drawing, whole inside the frame in both: the same total of mask and of masked foreground...
    totals = lambda f, m: torch.stack([m.sum((1, 2, 3)), (m * f).sum((1, 2, 3))])  # noqa: E731
    torch.testing.assert_close(totals(alone_foreground, alone_mask), totals(foreground[:, :, 0], mask[:, :, 0]))
    # ...at a random place: the mask's centres spread over the frame, not where the path starts.
    centres, _ = networks.centre_of_mass(alone_mask[:, 0])
    path_centres, _ = networks.centre_of_mass(mask[:, 0, 0])
    assert not torch.allclose(centres, path_centres) and float(centres.std(0).min()) > 1.0


def test_the_eta_knows_a_warm_up_step_is_cheaper_than_a_full_one() -> None:
    from gencli_videogan import WARMUP_STEP_COST

    work = plugin.training_work(TrainOptions(object_warmup=100))
    assert work(0) == 0 and work(100) == 100 * WARMUP_STEP_COST and work(150) == 100 * WARMUP_STEP_COST + 50
    assert plugin.training_work(TrainOptions(object_warmup=0))(7) == 7


def test_after_the_warm_up_the_joining_critics_weigh_in_over_the_handover() -> None:
    net = model.build(model.prepare(None, Config(**TINY), TrainOptions(object_warmup=2)).config).train()
    assert [net.phase(4) for _ in range(7)] == [(True, 0.0), (True, 0.0), (False, 0.25), (False, 0.5),
                                               (False, 0.75), (False, 1.0), (False, 1.0)]
    logits = torch.zeros(3 * 5)  # frame, moving and object critics' logits of 5 frames, one after another
    weights = net.discriminator.joining_weights(logits, 0.25)
    assert weights.tolist() == [0.25] * 10 + [1.0] * 5  # the object critic, trained in the warm-up, at full weight
    assert net.discriminator.joining_weights(logits, 1.0) is None
    assert tiny_model().train().phase(4) == (False, 1.0)  # no warm-up: every critic at full weight throughout
