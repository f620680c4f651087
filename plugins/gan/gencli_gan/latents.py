"""Latent codes: the latent of a seed, interpolation paths (linear and spherical), and latent arithmetic.

Seed S's latent is z ~ N(0, I) drawn from a generator seeded with S, and sample i of
``gencli sample dcgan -n N --seed S`` uses seed S + i, so any image in a grid can be recalled by its seed
(``-n 1 --seed S+i``) and used as an end point or an arithmetic term.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from gencli.errors import UsageError


def seed_latent(seed: int, z_dim: int) -> torch.Tensor:
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(seed))  # (z_dim,)


def seed_latents(first_seed: int, n: int, z_dim: int) -> torch.Tensor:
    return torch.stack([seed_latent(first_seed + i, z_dim) for i in range(n)])  # (n, z_dim)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): follows the great circle, so the
    path's norm stays near that of typical Gaussian draws instead of dipping towards the origin."""
    cos = torch.dot(a / a.norm(), b / b.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:  # (anti)parallel: the circle is undefined, the line is fine
        return linear(a, b, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def linear(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t[:, None]
    return (1 - t) * a + t * b


def interpolation(a: torch.Tensor, b: torch.Tensor, steps: int, path: str) -> torch.Tensor:
    """``steps`` latents from a to b inclusive, (steps, z_dim); the end points are exactly a and b."""
    if steps < 2:
        raise UsageError("--steps must be at least 2 (the two end points)")
    t = torch.linspace(0.0, 1.0, steps)
    walk = slerp(a, b, t) if path == "slerp" else linear(a, b, t)
    walk[0], walk[-1] = a, b  # exact end points, free of rounding in sin/cos
    return walk


OPERATOR = re.compile(r"\s+([+-])\s+|^\s*([+-])\s*")


def parse_arithmetic(expression: str, z_dim: int) -> tuple[list[tuple[str, torch.Tensor]], torch.Tensor]:
    """"a - b + c" -> ([(term text, z), ...], sum with signs). Terms are seeds (integers) or .safetensors
    files holding a tensor "z"; operators are + and - between spaces (a file name may contain '-')."""
    text = expression.strip()
    if re.fullmatch(r"[0-9+\- ]+", text):  # only seeds: spaces are optional ("3-8+12")
        text = re.sub(r"\s*([+-])\s*", r" \1 ", text).strip()
    tokens = text.split()
    if not tokens or len(tokens) % 2 == 0 and tokens[0] not in "+-":
        raise UsageError(f"--arithmetic {expression!r}: expected terms joined by + and -, e.g. \"3 - 8 + 12\"")
    if tokens[0] not in ("+", "-"):
        tokens = ["+"] + tokens
    if len(tokens) % 2:
        raise UsageError(f"--arithmetic {expression!r}: an operator without a term after it")
    terms, total = [], torch.zeros(z_dim)
    for sign, term in zip(tokens[0::2], tokens[1::2]):
        if sign not in ("+", "-") or term in ("+", "-"):
            raise UsageError(f"--arithmetic {expression!r}: expected terms joined by + and -")
        z = load_term(term, z_dim)
        terms.append((term, z))
        total = total + z if sign == "+" else total - z
    return terms, total


def load_term(term: str, z_dim: int) -> torch.Tensor:
    if term.isdigit():
        return seed_latent(int(term), z_dim)
    path = Path(term)
    if not path.is_file():
        raise UsageError(f"--arithmetic: {term} is neither a seed (an integer) nor a latent file")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise UsageError(f"--arithmetic: {term} is not a readable safetensors file ({error})") from None
    z = tensors.get("z")
    if z is None or z.numel() != z_dim:
        raise UsageError(f"--arithmetic: {term} must hold a tensor \"z\" of {z_dim} values (this model's z_dim)")
    return z.reshape(z_dim).float()


def save_latent(z: torch.Tensor, path: str | Path) -> None:
    """Write a latent for --arithmetic (for Python users: ``save_latent(seed_latent(3, 64), "smile.safetensors")``)."""
    from safetensors.torch import save_file

    save_file({"z": z.detach().reshape(-1).float().contiguous()}, str(path))

