"""VideoGAN (Vondrick, Pirsiavash and Torralba 2016, "Generating Videos with Scene Dynamics"): a two-stream
generator, a moving foreground with a soft mask over one static background, against a 3D-conv discriminator.

Trained by default on "moving digits over textures", made on the fly from gencli's embedded digits and the
texture photos scikit-image ships (``moving_digits.py``); ``--data DIR`` takes videos as folders of frames or
GIF files (``folders.py``). Outputs are ``Clips`` (animated GIF, PNG strips) through the core writers.

This module is the declaration and stays torch-free; everything else is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gencli.plugin import LazyPlugin, Preset, option

WEIGHTS = Path(__file__).parent / "weights"


@dataclass
class Config:
    image_size: int = option(32, "Frame side in pixels, a multiple of 8 (paper: 64; 32 keeps a CPU step near a "
                                 "second; 64 is four times the work).", minimum=16, maximum=128)
    frames: int = option(16, "Frames per clip, a multiple of 8 (paper: 32). --data videos are cut into clips of "
                             "this many frames.", minimum=8, maximum=64)
    digits: int = option(1, "Moving digits per clip in the embedded data (1 or 2); one keeps 'the digit's class' "
                            "well defined for the temporal-coherence figure.", minimum=1, maximum=2)
    z_dim: int = option(64, "Latent size (paper: 100); z is standard Gaussian.", minimum=1, maximum=1024)
    g_width: int = option(32, "Channels of the generator's last hidden 2D layers; the ones before have 2x and "
                              "4x (paper: 64, i.e. 512-256-128-64 over four layers; 32 gives 128-64-32 over "
                              "three); the moving sprite has half as many.",
                          minimum=1, maximum=512)
    d_width: int = option(16, "Channels of the discriminators' first layer (the clip's 3D, the frames' 2D); "
                              "then 2x and 4x (paper: 64 up to 512 over four 3D layers; 16 is a quarter).",
                          minimum=1, maximum=512)
    object_width: int = option(0, "Channels of the object critic's first layer (then 2x and 4x); 0: twice "
                                  "--d-width (older models, whose config.json lacks the key: --d-width).",
                               minimum=0, maximum=512)
    conditional: bool = option(False, "Also learn a frame encoder (the paper's image-to-video variant): "
                                      "`gencli sample videogan --from-image still.png` then animates that image.")
    head_frame: str = option("sprite", "Where the foreground's 3D heads draw f and m: 'sprite', in the moving "
                                       "object's own frame, so every frame shows the same drawing moved; "
                                       "'canvas', over the object already moved (the first bundled model).",
                             flag=False)
    # The fields below came after the first models: a config.json without them must rebuild the model its
    # weights were trained as, so their defaults are the old behaviour; `prepare` gives new runs NEW_RUN's values.
    sprite_padding: str = option("zeros", "What the sprite's convolutions see beyond its border: 'replicate' "
                                          "(new runs) its border repeated; 'zeros' (older models) drew bars in "
                                          "the mask along the sprite's square edges.", flag=False)
    whole_pixels: bool = option(False, "Move the sprite by whole pixels, as the embedded data's digits move "
                                       "(new runs; the gradient passes the rounding straight through); off, "
                                       "bilinear sub-pixel shifts blur the drawing differently in every frame.",
                                flag=False)
    min_speed: float = option(0.0, "The foreground's least speed, pixels a frame at 32 x 32 (new runs: 1, the "
                                   "embedded data's least; the most is 3). Free to slow down, sprites drifted to "
                                   "a standstill, and a foreground that stands still is background.",
                              minimum=0, maximum=2.5, flag=False)
    moving_critic: bool = option(False, "A third discriminator, of what moves in each frame (the frame minus the "
                                        "clip's per-pixel median over time), beside the clip's and the frames' "
                                        "(new runs).", flag=False)
    object_critic: bool = option(False, "A fourth discriminator, of the moving object itself: what moves in each "
                                        "judged frame, in a window centred on it; for a class-conditional model "
                                        "it also names the object's class (new runs).", flag=False)
    ema_decay: float = option(0.0, "Decay of the moving average of the generator's weights kept beside it, "
                                   "which sampling and evaluation use (set from --ema-decay; 0: none, as in "
                                   "older models).", flag=False)
    object_warmup: int = option(0, "Training steps at the start in which one frame is drawn and judged (set from "
                                   "--object-warmup; 0 for older models).", flag=False)
    classes: int = option(0, "Digit classes the model is conditioned on (set by --labels: 10 for the embedded "
                             "one-digit clips; 0, unconditional as in the paper, for older models and --data "
                             "folders).", flag=False)
    training_data: str = option("moving-digits", "The --data the model was trained on.", flag=False)


# An object warm-up step against a full step: one frame drawn and two critics, against 16 frames and four (0.146 s
# against 0.505 s at batch 32 on one thread of the 2-core AMD EPYC, ratio 0.29: benchmarks/videogan_step_times.py).
WARMUP_STEP_COST = 0.3

NEW_RUN = {"sprite_padding": "replicate", "whole_pixels": True, "moving_critic": True, "min_speed": 1.0,
           "object_critic": True}  # prepare() sets these for every new run


@dataclass
class TrainOptions:
    mask_l1: float = option(0.1, "Weight of the L1 penalty on the foreground mask (the paper's lambda = 0.1): it "
                                 "pushes everything that does not move into the background stream.",
                            minimum=0, maximum=100)
    real_label: float = option(0.9, "The discriminator's target for real clips; 0.9 is one-sided label smoothing "
                                    "(Salimans et al. 2016); 1 turns it off.", above=0, maximum=1)
    r1: float = option(1.0, "R1 penalty gamma (Mescheder et al. 2018): gamma / 2 times the squared gradient of the "
                            "discriminators' logits with respect to the real clips; 0 turns it off. At 1 the "
                            "discriminators no longer win every batch from the start, at some 60% more time a step.",
                       minimum=0, maximum=10_000)
    ema_decay: float = option(0.995, "Keep an exponential moving average of the generator's weights (this decay "
                                     "per step, with a warm-up) and sample from it: GAN weights wander from step "
                                     "to step (coherence rose and fell over a run without it); 0 turns it off.",
                              minimum=0, below=1)
    labels: bool = option(True, "Condition both players on each embedded clip's digit class (one-hot code in the "
                                "generator's input, a class head on the object critic; `gencli sample videogan "
                                "--label 7`). Unconditional models drew digit-like strokes but few digits; --no-labels "
                                "trains the paper's unconditional model. Only the embedded one-digit clips carry "
                                "labels.")
    class_weight: float = option(1.0, "With labels: weight of the object critic's class loss in the generator's "
                                      "objective (AC-GAN's is 1): how hard the generator is pushed towards "
                                      "objects the critic names as their label.", minimum=0, maximum=100)
    object_warmup: int = option(4500, "Steps at the start in which the generator draws one frame of each clip, "
                                      "the object critic judges its object (real/fake and class) and the frame "
                                      "critic its background, at under a third of a full step's cost: the object's "
                                      "look is learnt from many cheap steps before the clip's critic judges "
                                      "motion. 0: all critics from the start.",
                                minimum=0, maximum=1_000_000)
    handover: int = option(500, "Steps after the object warm-up over which the weight of the clip's and the frames' "
                                "critics (on the whole clip, object included) in the generator's objective rises "
                                "from 0 to 1, while they learn at full strength (joining at once, they undid the "
                                "warm-up's digits).",
                           minimum=0, maximum=1_000_000)
    warmup_background: bool = option(True, "In the object warm-up the frame critic also judges the whole frame, "
                                           "the object held as drawn, so it teaches the background alone: the "
                                           "object is then learnt over backgrounds like the real ones. Without, "
                                           "the background was first taught in the whole game and the object, "
                                           "learnt over another, lost coherence there.")
    warmup_r1: float = option(0.1, "R1 gamma in the object warm-up, where the object critic plays an image GAN's "
                                   "game: 0.1, as gencli's cgan (gamma 1 there drew digits further from the real "
                                   "ones).",
                              minimum=0, maximum=10_000)
    reconstruction: float = option(1.0, "With --conditional: weight of the L1 distance between the input frame and "
                                        "the first generated frame (the paper's image-to-video loss).",
                                   minimum=0, maximum=1000)


@dataclass
class SampleOptions:
    parts: bool = option(False, "Show each clip's parts beside it (the paper's Figure 3): clip, foreground, mask "
                                "and background, one row each in a PNG strip, side by side in a GIF.")
    fps: float = option(8.0, "Frames per second of the written GIF.", above=0, maximum=100)
    label: str = option("", "The digit class (0-9) of every clip, for a model trained with labels; by default "
                            "clip i shows class i mod 10.")
    from_image: Path | None = option(None, "Animate this still image (a model trained with --conditional): each "
                                           "of the -n clips is one possible future of it.")


@dataclass
class EvalOptions:
    clips: int = option(256, "Generated clips to score, and as many held-out real clips (and baseline clips).",
                        minimum=16, maximum=100_000)
    classifier_steps: int = option(200, "Adam steps of the small 3D-conv real-vs-generated classifier (the "
                                        "two-sample test), trained on half the clips and scored on the other half.",
                                   minimum=1, maximum=100_000)


class VideoGAN(LazyPlugin):
    name = "videogan"
    modality = "video"
    summary = ("Two-stream video GAN (Vondrick et al. 2016): a moving foreground and mask over a static "
               "background; animated GIFs, --parts.")
    implementation = "gencli_videogan.api"  # build, prepare, loss, sample, evaluate (imports torch)
    Config = Config
    TrainOptions = TrainOptions
    SampleOptions = SampleOptions
    EvalOptions = EvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"z_dim": 8, "g_width": 4, "d_width": 4, "frames": 8, "image_size": 16},
                       train={"steps": 10, "batch_size": 8, "log_every": 5},
                       evaluate={"clips": 32, "classifier_steps": 20}),
    }
    # Adam 2e-4, beta1 0.5, batch 32 (the paper: 2e-4, 0.5, 64).
    # The cosine runs over 9,000 steps and the run stops at 6,000, with the lr still at 6.5e-5 for the whole game's
    # critics to learn: coherence 0.859 against 0.820 with the cosine over the run's own 6,000 steps (0.754 against
    # 0.711 in the previous recipe).
    train_defaults = {"steps": 6000, "decay_steps": 9000, "batch_size": 32, "lr": 2e-4, "warmup_steps": 0,
                      "log_every": 25, "save_every": 500, "grad_clip": 1.0}
    default_data = ("moving-digits: one (or two, --digits 2) embedded MNIST digits bouncing over scikit-image "
                    "textures, made on the fly; or a folder of videos (folders of frames, GIF files)")
    bundled_weights = WEIGHTS / "videogan"
    supports_bf16 = False  # GAN training is fragile; the recipe was only checked in fp32
    find_unused_parameters = True  # the object warm-up leaves two critics and the motion layers idle

    def training_work(self, options: Any) -> Any:
        """The work of the first n steps, for an honest ETA: an object warm-up step costs under a third of a full
        step (WARMUP_STEP_COST)."""
        warmup = options.object_warmup
        return lambda steps: WARMUP_STEP_COST * min(steps, warmup) + max(0, steps - warmup)

    def configure_optimizer(self, model: Any, lr: float, options: Any) -> Any:
        """Adam with beta1 0.5 (as the paper), one parameter group per player."""
        return self._function("configure_optimizer")(model, lr)


plugin = VideoGAN()
