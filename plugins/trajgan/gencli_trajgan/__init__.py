"""trajgan: multi-agent trajectories (a basketball team and the ball) from a recurrent GAN.

The lecture's "GAN for spatio-temporal data": the players of a team and the ball are coupled sequences of court
positions, generated jointly, one frame at a time, by a recurrent generator (a GRU over all agents) and judged
by a recurrent discriminator that reads whole possessions. With ``--macro-goals on`` the generator also
carries each player's macro-goal (a corner, a wing, an elbow, the basket...), predicted by a macro-goal
policy and fed to the movement policy, in the spirit of Zheng, Yue & Lucey (2016) and the macro-intents of
Zhan et al. (ICLR 2019).

The default data are SYNTHETIC: SportVU tracking is proprietary and no longer distributed, so the plugin
simulates half-court possessions (``simulator.py``); ``--data FILE.csv`` trains on real tracking rows
(``sequence,frame,agent,x,y``).

This module is the declaration and stays torch-free; ``api.py`` and the modules it imports hold the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gencli.plugin import LazyPlugin, Preset, option


@dataclass
class Config:
    hidden_size: int = option(96, "GRU units of the generator (shared by the macro-goal and movement heads); "
                                  "96 keeps the bundled recipe near 15 min of one CPU thread.", minimum=1, maximum=4096)
    d_hidden: int = option(32, "GRU units per direction of the discriminator, which reads whole sequences both "
                               "ways.", minimum=1, maximum=4096)
    mixtures: int = option(8, "Gaussians in the mixture that draws a play's first frame.", minimum=1, maximum=64)
    macro_goals: Literal["on", "off"] = option(
        "on", "on: the generator predicts each player's macro-goal every frame and moves towards it (the "
              "simulator knows the true goals; Zheng et al. 2016); off: movement alone (needed for --data CSV).")
    agents: int = option(5, "Players per team for the simulator (the ball is one more agent); learned from a "
                            "--data CSV.", minimum=1, maximum=10)
    frames: int = option(50, "Frames per training window (50 at 6.25 Hz = 8 s, Zhan et al.'s length); longer "
                             "--data sequences are cut into windows of this length.", minimum=2, maximum=2000)
    court_length: float = option(47.0, "Court length in feet (x, baseline to half-court line); a --data CSV's "
                                       "positions must lie within it.", above=0, maximum=10_000)
    court_width: float = option(50.0, "Court width in feet (y, sideline to sideline).", above=0, maximum=10_000)
    rate: float = option(6.25, "Frames per second the model works at; --data is resampled to it.",
                         above=0, maximum=1000)
    roles: list = option([], "Agent names in order, the ball named \"ball\" (learned from the data).", flag=False)
    goal_count: int = option(0, "Macro-goals the simulator knows (learned; 0 without macro-goals).", flag=False)
    step_scale: float = option(0.0, "RMS per-frame move of the training data in court units (learned): the "
                                    "movement head predicts moves in these units.", flag=False)


@dataclass
class TrainOptions:
    adversarial_weight: float = option(
        0.05, "Weight of the generator's adversarial loss -log D(G(z)) on its free-running plays, beside the "
              "maximum-likelihood terms on teacher-forced real plays (0: likelihood only, no GAN). At 0.3 the "
              "discriminator won (it told 96% of fakes) and the plays drifted off the court (22% of player-frames "
              "out of bounds at step 1,500, 4.5% at step 500).", minimum=0, maximum=1000)
    adversarial_plays: int = option(16, "Free-running plays per step that the discriminator judges (of the "
                                        "batch's real plays, as many): a rollout is 50 sequential GRU steps, the "
                                        "costliest part of a step.", minimum=1, maximum=100_000)
    real_label: float = option(0.9, "The discriminator's target for real plays; 0.9 is one-sided label smoothing "
                                    "(Salimans et al. 2016); 1 turns it off.", above=0, maximum=1)
    data_rate: float = option(0.0, "Frame rate of --data CSV in Hz; 0: the rate recorded in its NAME.csv.json "
                                   "sidecar, else the model's --rate.", minimum=0, maximum=10_000)


@dataclass
class SampleOptions:
    given: Path | None = option(None, "Continue the play in this CSV (sequence,frame,agent,x,y; its first "
                                      "sequence) from its first --given-frames frames, kept unchanged.")
    given_frames: int = option(10, "Frames of --given to keep; the model generates the rest.", minimum=1,
                               maximum=100_000)
    frames: int = option(0, "Frames per play (0: the model's training window).", minimum=0, maximum=10_000)
    temperature: float = option(1.0, "Scales the spread of every random move; < 1 is tamer, 0 follows the "
                                     "mean path.", short="-t", minimum=0, maximum=10)


@dataclass
class EvalOptions:
    samples: int = option(1000, "Generated plays (and as many held-out plays and random walks) for the movement "
                                "statistics and the two-sample test.", minimum=20, maximum=100_000)
    classifier_steps: int = option(400, "Adam steps of the small GRU classifier that tells real plays from "
                                        "generated ones (the two-sample test).", minimum=1, maximum=100_000)


class TrajGAN(LazyPlugin):
    name = "trajgan"
    implementation = "gencli_trajgan.api"  # build, prepare, loss, sample, evaluate (imports torch)
    modality = "trajectories"
    summary = "Basketball plays from a recurrent GAN over all agents jointly, with macro-goals (SYNTHETIC court)."
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"hidden_size": 16, "d_hidden": 8, "mixtures": 2},
                       train={"steps": 20, "batch_size": 8},
                       evaluate={"samples": 40, "classifier_steps": 20}),
    }
    train_defaults = {"steps": 2000, "batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "log_every": 50,
                      "save_every": 500, "grad_clip": 1.0}
    default_data = ("halfcourt: SYNTHETIC basketball possessions from the built-in simulator (5 players and the "
                    "ball, 47 x 50 ft, 50 frames at 6.25 Hz; 8,000 train / 1,000 held-out plays); or --data "
                    "FILE.csv with rows sequence,frame,agent,x,y")
    bundled_weights = Path(__file__).parent / "weights"
    supports_bf16 = False  # the GAN recipe was only checked in fp32

    def configure_optimizer(self, model: Any, lr: float, options: Any) -> Any:
        """Adam with beta1 0.5 (Radford et al.), one parameter group per player."""
        return self._function("configure_optimizer")(model, lr)


plugin = TrajGAN()
