"""The plugin's implementation: build, prepare, loss, sample and evaluate (imports torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from gencli.errors import UsageError
from gencli.plugin import EvalRequest, Prepared, SampleRequest, Strokes
from gencli_handwriting.data import Alphabet, LineBatches, collate, load_lines, normalise, offset_scale, split
from gencli_handwriting.model import HandwritingNet, point_nll
from gencli_handwriting.sampling import generate
from gencli_handwriting.strokes import read_style


def build(config: Any) -> HandwritingNet:
    return HandwritingNet(config)


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    for name in ("hidden_size", "num_layers", "mixtures", "window_gaussians"):
        if getattr(config, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    lines, description = load_lines(data)
    train_lines, _ = split(lines)
    if config.arch == "synthesis":
        config.alphabet = config.alphabet or "".join(sorted({ch for line in lines for ch in line.text}))
        missing = Alphabet(config.alphabet).unknown("".join(line.text for line in train_lines))
        if missing:
            raise UsageError(f"training text has characters outside the model's alphabet: {''.join(missing)!r}")
    config.offset_scale = config.offset_scale or offset_scale(train_lines)
    if options.max_points < 2:
        raise UsageError("--max-points must be at least 2")
    batches = LineBatches(train_lines, Alphabet(config.alphabet), config.offset_scale, options.max_points)
    return Prepared(config, batches, description)


def _inputs_and_targets(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing: step t reads offset t-1 (a zero move at t = 0) and predicts offset t."""
    inputs = torch.cat([torch.zeros_like(points[:, :1]), points[:, :-1]], dim=1)
    return inputs, points


def loss(model: HandwritingNet, batch: tuple[torch.Tensor, ...], options: Any) -> tuple[torch.Tensor, dict]:
    points, point_mask, chars, char_mask = batch
    inputs, targets = _inputs_and_targets(points)
    count = point_mask.sum().clamp_min(1.0)
    clip = 1.0 / float(count) if options.derivative_clip else 0.0
    y_hat, _, _ = model(inputs, chars, char_mask, derivative_clip=clip)
    nats = (point_nll(y_hat, targets, model.mixtures) * point_mask).sum() / count
    return nats, {"nats_per_point": float(nats.detach())}


def sample(model: HandwritingNet, config: Any, options: Any, request: SampleRequest) -> Strokes:
    if not options.temperature > 0:
        raise UsageError("--temperature must be positive")
    if options.bias < 0:
        raise UsageError("--bias must be 0 or more")
    if options.length < 0:
        raise UsageError("--length must be 0 (automatic) or more")
    texts = [""]
    prime = read_style(options.style, options.style_text) if options.style is not None else None
    if model.synthesis:
        texts = [line.strip() for line in options.text.replace("\\n", "\n").split("\n")]
        texts = [line for line in texts if line]
        if not texts:
            raise UsageError("--text is empty")
        alphabet = Alphabet(config.alphabet)
        missing = alphabet.unknown("".join(texts) + (prime.text if prime is not None else ""))
        if missing:
            raise UsageError(f"characters not in the model's alphabet: {' '.join(repr(c) for c in missing)} "
                             f"(it knows {config.alphabet!r})")
        if prime is not None and not prime.text:
            raise UsageError("--style: the strokes need their transcription (a \"text\" field or --style-text)")
    length = options.length or (30 * max(len(t) for t in texts) + 60 if model.synthesis else 400)
    generator = torch.Generator(device=request.device).manual_seed(request.seed)
    written = generate(model, config, texts * request.n, bias=options.bias, temperature=options.temperature,
                       max_points=length, generator=generator, prime=prime, progress=request.progress)
    return Strokes(written.lines)


def evaluate(model: HandwritingNet, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    """Negative log-likelihood of held-out lines, in nats, per pen point and per line (normalised offsets)."""
    if options.max_lines < 1:
        raise UsageError("--max-lines must be at least 1")
    lines, _ = load_lines(request.data)
    _, held_out = split(lines)  # the same split as training, so these lines were never trained on
    held_out = held_out[: options.max_lines]
    alphabet = Alphabet(config.alphabet)
    if model.synthesis:
        missing = alphabet.unknown("".join(line.text for line in held_out))
        if missing:
            raise UsageError(f"evaluation lines have characters outside the model's alphabet: {''.join(missing)!r}")
    total, points_seen = 0.0, 0
    for start in range(0, len(held_out), 32):
        chunk = held_out[start : start + 32]
        points, point_mask, chars, char_mask = (t.to(request.device) for t in collate(
            [normalise(line.offsets, config.offset_scale) for line in chunk],
            [alphabet.encode(line.text) if model.synthesis else np.zeros(1, np.int64) for line in chunk]))
        inputs, targets = _inputs_and_targets(points)
        y_hat, _, _ = model(inputs, chars, char_mask)
        total += float((point_nll(y_hat, targets, model.mixtures) * point_mask).sum())
        points_seen += int(point_mask.sum())
    return {"nats_per_point": total / max(points_seen, 1), "nats_per_line": total / max(len(held_out), 1),
            "lines": len(held_out), "points": int(points_seen)}
