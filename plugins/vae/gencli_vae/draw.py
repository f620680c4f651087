"""DRAW (Gregor et al. 2015, "DRAW: A Recurrent Neural Network For Image Generation"): a VAE whose encoder and
decoder are LSTMs that take ``glimpses`` steps, reading the image and writing to a canvas through Gaussian
attention windows.

At step t the encoder reads an N x N glimpse of the image and of the error image x - sigmoid(canvas), where
the decoder's previous state points; q(z_t | ...) is a diagonal Gaussian on the encoder's state; the decoder
takes z_t and adds an attended N x N patch to the canvas. After the last step the canvas holds the Bernoulli
logits of the pixels. The latent code is the T per-step codes side by side (T x latent_size), so the rest of
the vae plugin (the bounds, --reconstruct, --interpolate, --traverse, evaluation) treats it like any code;
``decode`` runs the decoder alone on a given code, which is also how it generates from the prior.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli.errors import UsageError
from gencli_vae import likelihoods
from gencli_vae.bounds import LogWeights, standard_normal_log_density


def filterbanks(params: torch.Tensor, size: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Attention from 5 numbers per image (B, 5): centre (gx, gy), log variance, log stride, log intensity
    (Gregor et al., eqs. 19-26). Returns the normalised filterbanks F_x, F_y (B, n, size) and gamma (B, 1, 1)."""
    centre_x, centre_y, log_var, log_stride, log_gamma = params.unbind(-1)
    # Pixel positions count from 0 here (the paper counts from 1): centre 0 is the middle, (size - 1) / 2.
    grid_x = (size - 1) / 2 * (centre_x + 1)  # (B,) in pixel coordinates
    grid_y = (size - 1) / 2 * (centre_y + 1)
    stride = (size - 1) / max(n - 1, 1) * torch.exp(log_stride)  # (B,)
    offsets = torch.arange(n, device=params.device, dtype=params.dtype) - (n - 1) / 2  # (n,) symmetric
    positions = torch.arange(size, device=params.device, dtype=params.dtype)  # (size,)
    variance = torch.exp(log_var)[:, None, None]

    def bank(centre: torch.Tensor) -> torch.Tensor:
        means = centre[:, None] + offsets[None] * stride[:, None]  # (B, n)
        weights = torch.exp(-(positions[None, None] - means[:, :, None]).square() / (2 * variance))
        return weights / weights.sum(-1, keepdim=True).clamp_min(1e-8)  # (B, n, size)

    return bank(grid_x), bank(grid_y), torch.exp(log_gamma)[:, None, None]


def start_attention(head: nn.Linear, n: int, size: int, cover: float = 0.5) -> nn.Linear:
    """Start a window at the centre spanning ``cover`` of the image, each filter as wide as half a stride.
    With the plain zero bias an N = 2 read grid sits on the image's corners, which are blank in MNIST: the
    encoder then sees nothing, the model ignores its latents (KL 0.003 nats after 1,000 steps) and never
    learns to move the window."""
    if n > 1:
        stride = cover * (size - 1) / (n - 1)
        with torch.no_grad():
            head.bias.copy_(torch.tensor([0.0, 0.0, math.log((stride / 2) ** 2), math.log(cover), 0.0]))
    return head


class DRAW(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        if config.channels not in (0, 1):
            raise UsageError("--arch draw models one-channel images (grayscale)")
        size, hidden, z = config.image_size, config.hidden_size, config.latent_size
        self.size, self.steps, self.step_latents = size, config.glimpses, z
        self.read_n, self.write_n = config.read_size, config.write_size
        self.latent_size = self.steps * z  # the code the rest of the plugin sees
        self.likelihood = "bernoulli"
        self.encoder = nn.LSTMCell(2 * self.read_n ** 2 + hidden, hidden)
        self.decoder = nn.LSTMCell(z, hidden)
        self.posterior_head = nn.Linear(hidden, 2 * z)  # mean and log-variance of q(z_t | ...)
        self.read_head = start_attention(nn.Linear(hidden, 5), self.read_n, size)
        self.write_head = start_attention(nn.Linear(hidden, 5), self.write_n, size)
        self.write_patch = nn.Linear(hidden, self.write_n ** 2)
        self.register_buffer("steps_trained", torch.zeros((), dtype=torch.long))
        self.register_buffer("kl_per_dim", torch.zeros(self.latent_size))

    # -- attention --

    def read(self, x: torch.Tensor, error: torch.Tensor, h_dec: torch.Tensor) -> torch.Tensor:
        """N x N glimpses of the image and of the error image, scaled by gamma: (B, 2 N^2)."""
        fx, fy, gamma = filterbanks(self.read_head(h_dec), self.size, self.read_n)
        glimpse = lambda image: gamma * (fy @ image @ fx.transpose(1, 2))  # noqa: E731  (B, N, N)
        return torch.cat([glimpse(x).flatten(1), glimpse(error).flatten(1)], dim=1)

    def write(self, h_dec: torch.Tensor) -> torch.Tensor:
        """An N x N patch placed on the canvas by the transposed filterbanks, divided by gamma: (B, H, W)."""
        fx, fy, gamma = filterbanks(self.write_head(h_dec), self.size, self.write_n)
        patch = self.write_patch(h_dec).view(-1, self.write_n, self.write_n)
        return fy.transpose(1, 2) @ patch @ fx / gamma

    # -- the recurrence --

    def run(self, x: torch.Tensor | None, noise: torch.Tensor | None = None, code: torch.Tensor | None = None,
            keep_canvases: bool = False) -> dict[str, Any]:
        """Encode and decode x (B, 1, H, W) with z_t = mean_t + std_t * noise_t (noise (B, T, Z); None: the
        means), or, with ``code`` (B, T*Z) and no x, decode that code alone. Returns the canvas logits (B, 1,
        H, W), the per-step posterior means and log-variances (B, T*Z), the code and, if asked, every canvas."""
        batch = x.shape[0] if x is not None else code.shape[0]
        device = self.read_head.weight.device
        hidden = self.decoder.hidden_size
        state_dec = (torch.zeros(batch, hidden, device=device), torch.zeros(batch, hidden, device=device))
        state_enc = (torch.zeros(batch, hidden, device=device), torch.zeros(batch, hidden, device=device))
        canvas = torch.zeros(batch, self.size, self.size, device=device)
        image = x[:, 0] if x is not None else None
        means, log_vars, codes, canvases = [], [], [], []
        for t in range(self.steps):
            if image is not None:
                glimpse = self.read(image, image - torch.sigmoid(canvas), state_dec[0])
                state_enc = self.encoder(torch.cat([glimpse, state_dec[0]], dim=1), state_enc)
                mean, log_var = self.posterior_head(state_enc[0]).chunk(2, dim=1)
                log_var = log_var.clamp(-12.0, 8.0)
                z = mean if noise is None else mean + torch.exp(0.5 * log_var) * noise[:, t]
                means.append(mean)
                log_vars.append(log_var)
            else:
                z = code.view(batch, self.steps, self.step_latents)[:, t]
            codes.append(z)
            state_dec = self.decoder(z, state_dec)
            canvas = canvas + self.write(state_dec[0])
            if keep_canvases:
                canvases.append(canvas[:, None])
        out = {"logits": canvas[:, None], "code": torch.cat(codes, dim=1), "canvases": canvases}
        if image is not None:
            out["mean"], out["log_var"] = torch.cat(means, dim=1), torch.cat(log_vars, dim=1)
        return out

    # -- the interface the vae plugin uses (see model.VariationalAutoencoder) --

    def forward(self, x: torch.Tensor, k: int = 1, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> LogWeights:
        batch = x.shape[0]
        if noise is None:
            noise = torch.randn((k, batch, self.latent_size), generator=generator, device=x.device, dtype=x.dtype)
        k = noise.shape[0]
        images = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)  # (K*B, 1, H, W)
        out = self.run(images, noise.flatten(0, 1).view(k * batch, self.steps, self.step_latents))
        log_px = likelihoods.log_prob("bernoulli", out["logits"], images).view(k, batch)
        log_pz = standard_normal_log_density(out["code"]).sum(-1).view(k, batch)
        log_qz = (standard_normal_log_density(noise.flatten(0, 1)) - 0.5 * out["log_var"]).sum(-1).view(k, batch)
        # The posterior's parameters of the first sample's path (each path has its own): for the KL term.
        return LogWeights(log_px, log_pz, log_qz, out["mean"].view(k, batch, -1)[0],
                          out["log_var"].view(k, batch, -1)[0])

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior along its mean path (each z_t its mean): means and log-variances (B, T*Z)."""
        out = self.run(x)
        return out["mean"], out["log_var"]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """A code (B, T*Z) -> the canvas's Bernoulli logits (B, 1, H, W)."""
        return self.run(None, code=z)["logits"]

    def canvases(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The canvas logits after each step (T of (B, 1, H, W)) while decoding a code: DRAW's drawing."""
        return self.run(None, code=z, keep_canvases=True)["canvases"]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.posterior(x)[0]))
