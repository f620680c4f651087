"""The VAE module, its training data and objective, and the held-out evaluation (ELBO and IWAE log-likelihood)."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from gencli.data.images import EMBEDDED, ImageBatches, data_split, fixed_binarization, has_fixed_splits
from gencli.errors import UsageError
from gencli.plugin import EvalRequest, Prepared, no_description, no_progress

from gencli_vae import likelihoods, networks
from gencli_vae.bounds import LogWeights, analytic_kl, iwae_bound, standard_normal_log_density
from gencli_vae.sampling import sample  # noqa: F401  (the plugin's sample(), found here by LazyPlugin)

KL_ACTIVITY_DECAY = 0.99  # running mean of each latent's KL, which orders --traverse rows


class VariationalAutoencoder(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        self.likelihood = resolved_likelihood(config)
        self.latent_size = config.latent_size
        shape = _shape(config)
        self.encoder = networks.encoder(shape)
        self.decoder = networks.decoder(shape, likelihoods.PARAMS_PER_CHANNEL[self.likelihood])
        # Buffers travel in model.safetensors and checkpoints: the step count drives the KL warm-up (the
        # engine's loss() call does not pass the step), the KL per dimension ranks latents for --traverse.
        self.register_buffer("steps_trained", torch.zeros((), dtype=torch.long))
        self.register_buffer("kl_per_dim", torch.zeros(config.latent_size))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): mean and log-variance (B, Z) of x (B, C, H, W) in model space."""
        return networks.split_posterior(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z) -> the likelihood's parameters (B, C*P, H, W)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, k: int = 1, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> LogWeights:
        """K reparameterised samples z = mean + std * noise per image and their log-weights.
        ``noise`` (K, B, Z) fixes the draws; otherwise they come from ``generator`` (or torch's global RNG)."""
        mean, log_var = self.posterior(x)  # (B, Z)
        if noise is None:
            noise = torch.randn((k, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
        k, batch = noise.shape[0], x.shape[0]
        z = mean + torch.exp(0.5 * log_var) * noise  # (K, B, Z)
        params = self.decode(z.flatten(0, 1))  # (K*B, C*P, H, W)
        targets = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
        log_px = likelihoods.log_prob(self.likelihood, params, targets).view(k, batch)
        log_pz = standard_normal_log_density(z).sum(-1)
        log_qz = (standard_normal_log_density(noise) - 0.5 * log_var).sum(-1)  # change of variables from noise
        return LogWeights(log_px, log_pz, log_qz, mean, log_var)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's mean at the encoder's mean, in [0, 1] (B, C, H, W)."""
        mean, _ = self.posterior(x)
        return likelihoods.mean(self.likelihood, self.decode(mean))


def resolved_likelihood(config: Any) -> str:
    return "bernoulli" if config.likelihood == "auto" else config.likelihood


def _shape(config: Any) -> Any:
    """The config with ``channels`` 0 (not yet learned) read as 1, so a default Config still builds."""
    from dataclasses import replace

    return replace(config, channels=config.channels or 1)


def build(config: Any) -> nn.Module:
    _check_config(config)
    if config.arch == "draw":
        from gencli_vae.draw import DRAW

        return DRAW(config)
    return VariationalAutoencoder(config)


def _check_config(config: Any) -> None:
    if config.latent_size < 1 or config.hidden_size < 1 or config.conv_channels < 1:
        raise UsageError("--latent-size, --hidden-size and --conv-channels must be at least 1")
    if config.image_size < 4 or (config.arch == "conv" and config.image_size % 4):
        raise UsageError(f"--image-size {config.image_size}: --arch conv needs a multiple of 4 (e.g. 28 or 32)")
    if config.arch == "draw":
        if min(config.glimpses, config.read_size, config.write_size) < 1:
            raise UsageError("--glimpses, --read-size and --write-size must be at least 1")
        if config.likelihood == "logistic":
            raise UsageError("--arch draw models binary images: use --likelihood bernoulli (a folder is then "
                             "binarized like the embedded digits)")


# ---- data ------------------------------------------------------------------------------------------------------


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    if options.k < 1:
        raise UsageError("--k must be at least 1")
    if options.kl_warmup < 0:
        raise UsageError("--kl-warmup must be 0 or more steps")
    _check_config(config)
    if config.likelihood == "auto":
        config.likelihood = "bernoulli" if has_fixed_splits(data) or config.arch == "draw" else "logistic"
    # A user's folder: train on 90%, evaluate() scores the fixed 10% held out.
    images = data_split(data, "train", config.image_size, config.channels or None)
    config.channels = images.shape[0]
    config.training_data = data or EMBEDDED  # what `gencli evaluate` scores when --data is not given
    binary = config.likelihood == "bernoulli"
    description = images.description + (", binarized afresh every batch" if binary else "")
    return Prepared(config, ImageBatches(images, binary=binary), description)


def held_out(data: str | None, config: Any, describe: Callable[[str], None] = no_description) -> torch.Tensor:
    """The test images in model space (N, C, H, W): the data set's test split, or a folder's held-out 10%
    (``describe`` is told which). Binary models score the one fixed binarization that every plugin uses."""
    images = data_split(data, "test", config.image_size, config.channels or 1)
    binary = fixed_binarization(images, "test") if resolved_likelihood(config) == "bernoulli" else None
    describe(images.description + (", binarized once with a fixed seed" if binary is not None else ""))
    return likelihoods.to_model_space(images.pixels, resolved_likelihood(config), binary)


# ---- training objective ------------------------------------------------------------------------------------------


def kl_weight(model: VariationalAutoencoder, options: Any) -> float:
    """Linear KL warm-up (Bowman et al. 2016; Sonderby et al. 2016): 1/W, 2/W .. 1 over the first W steps."""
    if options.kl_warmup <= 0:
        return 1.0
    return min(1.0, (int(model.steps_trained) + 1) / options.kl_warmup)


def loss(model: nn.Module, batch: dict[str, torch.Tensor], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    vae: VariationalAutoencoder = getattr(model, "module", model)  # unwrap DistributedDataParallel
    x = likelihoods.to_model_space(batch["pixels"], vae.likelihood, batch.get("binary"))
    beta = kl_weight(vae, options)
    k = options.k if options.objective == "iwae" else 1
    weights = model(x, k)  # through the wrapper, so a distributed run syncs gradients
    kl_dims = analytic_kl(weights.mean, weights.log_var)  # (B, Z)
    kl = kl_dims.sum(-1)  # (B,)
    recon = -weights.log_px.mean(0)  # (B,)
    if options.objective == "iwae":
        objective = iwae_bound(weights, beta)
    else:  # the closed-form KL has less variance than the Monte Carlo one
        objective = -recon - beta * kl
    with torch.no_grad():
        metrics = {"elbo": float(-(recon + kl).mean()), "kl": float(kl.mean()), "recon": float(recon.mean())}
    if options.objective == "iwae":
        metrics["iwae"] = float(objective.detach().mean())
    if vae.training:
        with torch.no_grad():
            vae.steps_trained += 1
            vae.kl_per_dim.mul_(KL_ACTIVITY_DECAY).add_((1 - KL_ACTIVITY_DECAY) * kl_dims.detach().mean(0))
    if beta < 1.0:
        metrics["kl_weight"] = beta
    return -objective.mean(), metrics


# ---- evaluation ----------------------------------------------------------------------------------------------------

DECODES_PER_CHUNK = 2000  # images decoded at once: bounds memory (about 100 MB for the conv decoder)


def log_weight_table(model: VariationalAutoencoder, x: torch.Tensor, k: int, generator: torch.Generator,
                     progress: Callable[..., None] = no_progress) -> torch.Tensor:
    """log w (K, N) for every test image, computed in chunks of images and of samples; ``progress(done, total)``
    counts decoded samples (the k=500 estimate takes a minute or more on a CPU)."""
    images_per_chunk = max(1, min(x.shape[0], DECODES_PER_CHUNK // min(k, DECODES_PER_CHUNK)))
    columns = []
    total = x.shape[0] * k
    for start in range(0, x.shape[0], images_per_chunk):
        images = x[start:start + images_per_chunk]
        samples_per_chunk = max(1, DECODES_PER_CHUNK // images.shape[0])
        rows = []
        for done in range(0, k, samples_per_chunk):
            rows.append(model(images, min(samples_per_chunk, k - done), generator=generator).total())
            progress(start * k + images.shape[0] * min(k, done + samples_per_chunk), total)
        columns.append(torch.cat(rows, dim=0))
    return torch.cat(columns, dim=1)


def evaluate(model: VariationalAutoencoder, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    if options.k < 1:
        raise UsageError("--k must be at least 1")
    if options.max_images < 0:
        raise UsageError("--max-images must be 0 (all) or more")
    x = held_out(request.data or config.training_data, config, request.describe_data)
    if options.max_images:
        x = x[:options.max_images]
        request.describe_data(f"the first {len(x):,} of them")
    x = x.to(request.device)
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    log_w = log_weight_table(model, x, options.k, generator, request.progress)  # (K, N)
    elbo = float(log_w.mean())
    nll = -float((torch.logsumexp(log_w, dim=0) - math.log(options.k)).mean())
    mean, log_var = model.posterior(x)
    kl = analytic_kl(mean, log_var)  # (N, Z)
    dims = x[0].numel()
    return {
        "elbo_nats_per_image": elbo,  # a lower bound on log p(x): negative, closer to 0 is better
        "nll_nats_per_image": nll,  # -log p(x) estimated with k importance samples (an upper bound)
        "elbo_gap_nats": -elbo - nll,  # how much looser the ELBO is than the k-sample bound
        "bits_per_dim": nll / (dims * math.log(2)),
        "elbo_bits_per_dim": -elbo / (dims * math.log(2)),
        "kl_nats_per_image": float(kl.sum(-1).mean()),
        # Burda et al.'s active units: the posterior mean varies across images (variance > 0.01)
        "active_latents": int((mean.var(0) > 0.01).sum()) if x.shape[0] > 1 else 0,
        "importance_samples": options.k,
        "test_images": x.shape[0],
    }
