"""Writing a text: the synthesis network stepped one pen point at a time, primed optionally with a style line.

A line ends when the attention window has passed its last character (Graves' rule, section 5.3: phi of the
position one past the end outweighs phi of every character) and the pen has lifted from the stroke it was
drawing; or at the length limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gencli_handwriting.data import Alphabet, collate, normalise
from gencli_handwriting.model import HandwritingNet, draw_point
from gencli_handwriting.strokes import Line

FINISH_POINTS = 12  # at most this many points after the window passes the end, to finish the last stroke


@dataclass
class Written:
    lines: list[np.ndarray]  # (T, 3) offsets in data units, one per row
    kappa: list[np.ndarray]  # (T, K) window locations of each written point (synthesis only)
    finished: list[bool]  # whether the window passed the end of the text (False: stopped at the length limit)


def generate(model: HandwritingNet, config: Any, texts: list[str], *, bias: float, temperature: float,
             max_points: int, generator: torch.Generator, prime: Line | None = None,
             progress: Any = None) -> Written:
    """One row per text, written side by side as one batch."""
    device = next(model.parameters()).device
    rows = len(texts)
    alphabet = Alphabet(config.alphabet)
    # Priming (section 5.5): the network reads the style line with its transcription, then goes on writing.
    lead = (prime.text + " ") if (prime is not None and model.synthesis) else ""
    full = [lead + text for text in texts]
    chars = char_mask = None
    if model.synthesis:
        _, _, chars, char_mask = collate([np.zeros((1, 3), np.float32)] * rows,
                                         [alphabet.encode(t) for t in full])
        chars, char_mask = chars.to(device), char_mask.to(device)
    start = torch.zeros(rows, 1, 3, device=device)
    if prime is not None:
        primer = torch.from_numpy(normalise(prime.offsets, config.offset_scale)).to(device)
        start = torch.cat([start, primer[None].expand(rows, -1, -1)], dim=1)
    ends = torch.tensor([len(t) for t in full], device=device)  # index of the position one past the end
    y_hat, state, _ = model(start, chars, char_mask)
    y_hat = y_hat[:, -1]
    points, kappas = [], []
    finished = torch.zeros(rows, dtype=torch.bool, device=device)  # the window has passed the end
    stopped = torch.zeros(rows, dtype=torch.bool, device=device)  # ... and the last stroke is done
    passed_at = torch.full((rows,), max_points, device=device)
    lengths = torch.full((rows,), max_points, device=device)
    for step in range(max_points):
        point = draw_point(y_hat, model.mixtures, bias, temperature, generator)  # (R, 3)
        points.append(point)
        if progress is not None:
            progress(step + 1, max_points)
        y_hat, state, trace = model(point[:, None], chars, char_mask, state)
        y_hat = y_hat[:, -1]
        if model.synthesis:
            kappas.append(trace["kappa"][:, -1])
            finished |= _past_the_end(trace, ends)
            # Once past the end, the pen finishes the stroke it is drawing (the last letter) and lifts.
            passed_at = torch.where(finished & (passed_at > step), torch.full_like(passed_at, step), passed_at)
            done = finished & ~stopped & ((point[:, 2] > 0.5) | (step + 1 - passed_at >= FINISH_POINTS))
            lengths = torch.where(done, torch.full_like(lengths, step + 1), lengths)
            stopped |= done
            if bool(stopped.all()):
                break
    stacked = torch.stack(points, 1).cpu().numpy()  # (R, T, 3)
    kappa = torch.stack(kappas, 1).cpu().numpy() if kappas else np.zeros((rows, stacked.shape[1], 0))
    lines, kappa_rows = [], []
    for row in range(rows):
        line = stacked[row, : int(lengths[row])].astype(np.float64)
        line[:, :2] *= config.offset_scale
        line[-1, 2] = 1.0  # the pen lifts at the end of the line
        lines.append(line.astype(np.float32))
        kappa_rows.append(kappa[row, : int(lengths[row])])
    return Written(lines, kappa_rows, finished.cpu().tolist())


def _past_the_end(trace: dict[str, torch.Tensor], ends: torch.Tensor) -> torch.Tensor:
    """(R,) bool: phi(t, U + 1) > phi(t, u) for every character u of the row (positions counted from 0 here)."""
    alpha, beta, kappa = (trace[name][:, -1] for name in ("alpha", "beta", "kappa"))  # (R, K)
    positions = torch.arange(int(ends.max()) + 1, device=kappa.device, dtype=kappa.dtype)  # (U + 1,)
    phi = (alpha[..., None] * torch.exp(-beta[..., None] * (kappa[..., None] - positions) ** 2)).sum(1)  # (R, U+1)
    at_end = phi.gather(1, ends[:, None])[:, 0]
    inside = positions[None] < ends[:, None]
    best_inside = phi.masked_fill(~inside, float("-inf")).max(1).values
    return at_end > best_inside
