"""rbm and dbm: restricted Boltzmann machines (Smolensky 1986; CD-k, Hinton 2002; PCD, Tieleman 2008) and
two-layer deep Boltzmann machines (Salakhutdinov and Hinton 2009), with AIS log-likelihoods (Salakhutdinov
and Murray 2008).

This module is the two plugins' declaration and stays torch-free; ``rbm.py`` and ``dbm.py`` hold the models
and are imported only when a plugin is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gencli.plugin import LazyPlugin, Preset, option

WEIGHTS = Path(__file__).parent / "weights"
DATA = ("mnist-5k: the embedded 4,000 MNIST training digits, stochastically binarized; or mnist, fashion-mnist "
        "(`gencli data list`), a folder of IDX files, or --data DIR of images")
TRAINING_DATA_HELP = "The --data the model was trained on: what `gencli evaluate` scores when --data is not given."


def sgd(model: Any, lr: float, momentum: float, weight_decay: float) -> Any:
    """Plain SGD with momentum, the Boltzmann machine recipe (Hinton's practical guide); L2 weight decay on the
    weight matrices only, never the biases."""
    import torch

    weights = [p for name, p in model.named_parameters() if "bias" not in name]
    biases = [p for name, p in model.named_parameters() if "bias" in name]
    # fused: one kernel per group instead of separate passes for decay, momentum and the step (2x on a CPU).
    return torch.optim.SGD([{"params": weights, "weight_decay": weight_decay},
                            {"params": biases, "weight_decay": 0.0}], lr=lr, momentum=momentum, fused=True)


# ---- rbm -----------------------------------------------------------------------------------------------


@dataclass
class RBMConfig:
    image_size: int = option(28, "Images are image_size x image_size grayscale, one visible unit per pixel.",
                             minimum=1, maximum=256)
    hidden: int = option(500, "Hidden units; 500 is Salakhutdinov and Murray's MNIST RBM.", minimum=1, maximum=16_384)
    chains: int = option(100, "Persistent Gibbs chains (PCD's fantasy particles), saved with the weights.",
                         minimum=1, maximum=100_000)
    training_data: str = option("mnist-5k", TRAINING_DATA_HELP, flag=False)


@dataclass
class RBMTrainOptions:
    method: Literal["cd", "pcd"] = option("pcd", "cd: chains restart at the data each step (Hinton 2002); pcd: "
                                                 "persistent chains (Tieleman 2008), better likelihoods.")
    k: int = option(1, "Gibbs steps per update (CD-k / PCD-k); the bundled RBM uses 5. On mnist-5k, 5 gave -101.3 "
                       "nats on the test digits against -107.3 with 1, at twice the training time.",
                    minimum=1, maximum=1000)
    momentum: float = option(0.5, "SGD momentum (Hinton's guide: 0.5 to 0.9; high values hurt PCD's chains).",
                             minimum=0, below=1)
    weight_decay: float = option(1e-4, "L2 penalty on the weights (not the biases), Hinton's 0.0001.",
                                 minimum=0, maximum=1)
    sparsity_target: float = option(0.0, "Wanted mean activation of each hidden unit (0: no sparsity term).",
                                    minimum=0, below=1)
    sparsity_cost: float = option(0.1, "Strength of the sparsity term on the hidden biases (Lee et al. 2008).",
                                  minimum=0, maximum=100)


@dataclass
class SampleOptions:
    gibbs_steps: int = option(100, "Gibbs sweeps per chain before the image is shown. 100 moves well away from "
                                   "the saved chains; from noise give 1,000 or more. (The bundled DBM's chains drift "
                                   "toward 7s and 0s over about 1,000 sweeps: its own chains mix poorly.)",
                              minimum=1, maximum=1_000_000)
    start: Literal["chains", "noise"] = option(
        "chains", "Where the Gibbs chains start: 'chains' continues the persistent chains saved with the weights "
                  "(the model's own samples at the end of training, one per -n, picked by --seed), 'noise' starts "
                  "from uniform noise; chains from noise mix slowly and may show only a few digit classes.")
    chain: bool = option(False, "Show each chain's progress over time: one row per chain (-n rows).")
    snapshots: int = option(10, "With --chain: images per row, evenly spaced over the Gibbs sweeps.",
                            minimum=2, maximum=1000)
    filters: bool = option(False, "Show the first layer's learned weights as images (-n of them; -n 1: 100).")
    features: Path | None = option(None, "Print the most active first-layer hidden units for this image.")
    top: int = option(10, "With --features: how many hidden units to print.", minimum=1, maximum=100_000)


@dataclass
class RBMEvalOptions:
    ais_runs: int = option(100, "AIS runs (importance weights) for log Z; all run at once as one batch.",
                           minimum=1, maximum=100_000)
    ais_betas: int = option(14500, "AIS intermediate temperatures; Salakhutdinov and Murray's 14,500 (500 in "
                                   "[0, 0.5], 4,000 in [0.5, 0.9], 10,000 in [0.9, 1]), scaled alike.",
                                   minimum=3, maximum=1_000_000)


class RBM(LazyPlugin):
    name = "rbm"
    implementation = "gencli_boltzmann.rbm"
    modality = "image"
    summary = "Bernoulli restricted Boltzmann machine (CD-k / PCD) with AIS log-likelihood."
    Config = RBMConfig
    TrainOptions = RBMTrainOptions
    SampleOptions = SampleOptions
    EvalOptions = RBMEvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.", config={"hidden": 16, "chains": 10},
                       train={"steps": 40}, evaluate={"ais_runs": 10, "ais_betas": 500}),
    }
    # SGD at 0.05 on mean gradients, batches of 100 (40 per epoch of the 4,000 digits; 10,000 steps = 250
    # epochs, about 5 minutes on one CPU thread), the cosine decay to lr/10 anneals PCD's chains; no gradient
    # clipping (the CD update is not the gradient of a loss to tame).
    train_defaults = {"steps": 10000, "batch_size": 100, "lr": 0.05, "grad_clip": 0.0, "warmup_steps": 0,
                      "log_every": 40, "save_every": 1000}
    default_data = DATA
    bundled_weights = WEIGHTS / "rbm"
    # Trains well in bf16 (the default PCD-1 recipe scored -105.5 nats against -107.3 in fp32), and an explicit
    # --precision bf16 is obeyed; but on the CPU the fp32 step runs on numba kernels that match or beat torch's
    # bf16 matmuls even where the CPU has AVX512-BF16 (benchmarks/rbm_vs_sklearn.py, README), so --precision auto
    # keeps fp32 there (bf16 on CUDA), and says why in run.json and the model card.
    supports_bf16 = None
    cpu_fp32_reason = ("the rbm's fp32 step runs on numba kernels that sum only the rows its 0/1 states pick, as fast "
                       "as or faster than bf16 matmuls even with AVX512-BF16")

    def configure_optimizer(self, model: Any, lr: float, options: RBMTrainOptions) -> Any:
        return sgd(model, lr, options.momentum, options.weight_decay)

    def gradients(self, model: Any, batch: Any, options: RBMTrainOptions) -> Any:
        """CD / PCD statistics set as gradients directly (plugin.OptionalMembers.gradients)."""
        return self._function("gradients")(model, batch, options)


# ---- dbm -----------------------------------------------------------------------------------------------


@dataclass
class DBMConfig:
    image_size: int = option(28, "Images are image_size x image_size grayscale, one visible unit per pixel.",
                             minimum=1, maximum=256)
    hidden1: int = option(500, "First hidden layer's units (Salakhutdinov and Hinton: 500).", minimum=1, maximum=16_384)
    hidden2: int = option(500, "Second hidden layer's units (Salakhutdinov and Hinton: 1000; 500 for a CPU).",
                          minimum=1, maximum=16_384)
    chains: int = option(100, "Persistent Gibbs chains (fantasy particles), saved with the weights.",
                         minimum=1, maximum=100_000)
    training_data: str = option("mnist-5k", TRAINING_DATA_HELP, flag=False)


@dataclass
class DBMTrainOptions:
    pretrain_steps: int = option(2000, "Greedy pretraining steps per layer (CD-1 RBMs with doubled inputs); "
                                       "joint PCD training follows in the same run.", minimum=0, maximum=100_000_000)
    mean_field_steps: int = option(10, "Mean-field updates for the data-dependent statistics.", minimum=1, maximum=1000)
    k: int = option(1, "Gibbs sweeps of the persistent chains per update.", minimum=1, maximum=1000)
    momentum: float = option(0.5, "SGD momentum.", minimum=0, below=1)
    weight_decay: float = option(1e-4, "L2 penalty on the weights (not the biases).", minimum=0, maximum=1)
    joint_lr_scale: float = option(0.1, "Joint training's step size relative to pretraining's: the pretrained "
                                        "RBMs take large CD steps, PCD on the whole DBM needs small ones.",
                                        above=0, maximum=10)


@dataclass
class DBMEvalOptions:
    ais_runs: int = option(100, "AIS runs (importance weights) for log Z; all run at once as one batch.",
                           minimum=1, maximum=100_000)
    ais_betas: int = option(14500, "AIS intermediate temperatures (Salakhutdinov and Murray's schedule).",
                            minimum=3, maximum=1_000_000)
    mean_field_steps: int = option(30, "Mean-field updates per test image for the variational lower bound.",
                                   minimum=1, maximum=1000)
    quick: bool = option(False, "A first look in about a twentieth of the time: at most 20 AIS runs and 3,000 "
                                "temperatures, with log Z's standard error printed; it reads a few nats high, so "
                                "report the full estimate.")


class DBM(LazyPlugin):
    name = "dbm"
    implementation = "gencli_boltzmann.dbm"
    modality = "image"
    summary = "Two-layer deep Boltzmann machine (greedy pretraining, PCD + mean-field) with AIS bound."
    Config = DBMConfig
    TrainOptions = DBMTrainOptions
    SampleOptions = SampleOptions
    EvalOptions = DBMEvalOptions
    presets = {
        "tiny": Preset("Seconds to train; for tests and smoke runs.",
                       config={"hidden1": 16, "hidden2": 8, "chains": 10}, train={"steps": 60},
                       evaluate={"ais_runs": 10, "ais_betas": 500, "mean_field_steps": 10}),
    }
    # 2 x 2,000 pretraining steps (50 epochs per layer), then 6,000 joint steps at a tenth of the rate
    # (--joint-lr-scale 0.1), decaying further along the cosine. Measured on the test split (lower bounds):
    # -111.7 nats with chains started from noise at 0.1; full-rate joint steps blew the weights up (log Z in
    # the thousands, -122 to -149 nats), and chains started at training images never found the spurious modes
    # (-156 to -180 nats).
    train_defaults = {"steps": 10000, "batch_size": 100, "lr": 0.05, "grad_clip": 0.0, "warmup_steps": 0,
                      "log_every": 40, "save_every": 1000}
    default_data = DATA
    bundled_weights = WEIGHTS / "dbm"

    def configure_optimizer(self, model: Any, lr: float, options: DBMTrainOptions) -> Any:
        # Weight decay is part of the DBM's loss instead, so that the joint phase's smaller steps scale it too.
        return sgd(model, lr, options.momentum, 0.0)


# Not named rbm and dbm: importing the implementation modules gencli_boltzmann.rbm and .dbm would rebind
# those package attributes to the modules.
rbm_plugin = RBM()
dbm_plugin = DBM()
