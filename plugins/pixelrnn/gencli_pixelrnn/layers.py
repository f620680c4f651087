"""The layers of PixelRNN (van den Oord, Kalchbrenner and Kavukcuoglu 2016): masked convolutions, the
PixelCNN residual block, the Row LSTM and the Diagonal BiLSTM; and the Gated PixelCNN's two stacks.

Every layer maps a feature map (B, width, H, W) to one of the same shape, and the feature at pixel (i, j)
depends only on pixels before (i, j) in raster order. With several colour channels, feature maps are split
into contiguous groups (R, G, B): a group-g feature at (i, j) may also see colours < g of that pixel (mask A,
the first layer) or features of groups <= g (mask B, every later layer).

The fast sampler runs each layer one pixel at a time from cached activations; that lives in
``incremental.py``, which reads these layers' weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def channel_groups(width: int, colours: int) -> torch.Tensor:
    """Colour group of each of ``width`` channels: contiguous thirds for RGB, all 0 for one colour."""
    return torch.arange(width) * colours // width


class MaskedConv2d(nn.Module):
    """A ``kernel`` convolution that sees only rows above and, in the centre row, pixels to the left, plus
    (at the centre) the allowed colour groups: mask A ``out > in``, mask B ``out >= in``.

    Only the causal rows of the kernel are stored, (kh // 2 + 1, kw), padded at the top alone: half the
    multiply-adds of a full kernel with its bottom half zeroed, and ``reach`` = how many rows above it reads.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], mask: str, colours: int,
                 out_groups: torch.Tensor | None = None) -> None:
        super().__init__()
        kh, kw = kernel
        self.reach, self.half_width = kh // 2, kw // 2
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, self.reach + 1, kw))
        self.bias = nn.Parameter(torch.empty(out_channels))
        fan_in = in_channels * (self.reach * kw + self.half_width + 1)  # the taps the mask leaves
        nn.init.uniform_(self.weight, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        out_groups = channel_groups(out_channels, colours) if out_groups is None else out_groups
        in_groups = channel_groups(in_channels, colours)
        allowed = out_groups[:, None] > in_groups[None, :] if mask == "A" else out_groups[:, None] >= in_groups[None, :]
        keep = torch.ones(out_channels, in_channels, self.reach + 1, kw)
        keep[:, :, -1, self.half_width + 1:] = 0  # right of the centre in the centre row
        keep[:, :, -1, self.half_width] = allowed.float()
        self.register_buffer("mask", keep, persistent=False)  # rebuilt from the config, never saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.half_width, self.half_width, self.reach, 0))  # no bottom padding: nothing below is read
        return F.conv2d(x, self.weight * self.mask, self.bias)


def lstm_cell(gates: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM update; ``gates`` (B, 4h, ...) interleaved per unit as (h, 4) so a unit's four gates share
    its colour group, ``cell`` (B, h, ...)."""
    unit_gates = gates.unflatten(1, (-1, 4))  # (B, h, 4, ...)
    i, f, o, g = unit_gates.unbind(2)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell


def gate_groups(hidden: int, colours: int) -> torch.Tensor:
    """Colour groups of the 4h gate channels laid out (h, 4): each unit's four gates in its group."""
    return channel_groups(hidden, colours).repeat_interleave(4)


class ResidualConvBlock(nn.Module):
    """PixelCNN residual block: ReLU, masked k x k conv (mask B), ReLU, 1 x 1 conv, added to the input."""

    def __init__(self, width: int, colours: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = MaskedConv2d(width, width, (kernel, kernel), "B", colours)
        self.mix = MaskedConv2d(width, width, (1, 1), "B", colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(F.relu(self.conv(F.relu(x))))


class RowLSTMBlock(nn.Module):
    """Row LSTM (section 3.1): rows top to bottom, each row's state computed at once from
    an input-to-state 1 x 3 conv over the current row (mask B) and a state-to-state 1 x 3 conv over the
    row above's hidden state; its context is the triangle above the pixel. A 1 x 1 conv of the h hidden units
    back to ``width`` (= 2h in the paper) is added to the input (the residual connection)."""

    def __init__(self, width: int, colours: int) -> None:
        super().__init__()
        hidden = max(1, width // 2)
        self.input_to_state = MaskedConv2d(width, 4 * hidden, (1, 3), "B", colours, gate_groups(hidden, colours))
        self.state_to_state = nn.Conv1d(hidden, 4 * hidden, 3, padding=1)  # the row above is complete: no mask
        self.residual = MaskedConv2d(hidden, width, (1, 1), "B", colours)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        gates_in = self.input_to_state(x)  # (B, 4h, H, W), all rows in one convolution
        h = c = x.new_zeros(batch, self.hidden, width)
        rows = []
        for i in range(height):
            h, c = lstm_cell(gates_in[:, :, i] + self.state_to_state(h), c)  # (B, h, W)
            rows.append(h)
        return x + self.residual(torch.stack(rows, dim=2))


def skew(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, H + W - 1): row i shifted right by i, so each column is a diagonal."""
    batch, channels, height, width = x.shape
    padded = F.pad(x, (0, height))  # (B, C, H, W + H)
    return padded.flatten(2)[:, :, : height * (width + height - 1)].view(batch, channels, height, width + height - 1)


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """The inverse of ``skew``: (B, C, H, H + W - 1) -> (B, C, H, W)."""
    batch, channels, height, _ = x.shape
    padded = F.pad(x.flatten(2), (0, height)).view(batch, channels, height, width + height)
    return padded[:, :, :, :width]


class DiagonalLSTM(nn.Module):
    """One direction of the Diagonal BiLSTM (section 3.2): a 1 x 1 input-to-state conv (mask B) and a
    column-wise LSTM over the skewed map whose state-to-state 2 x 1 conv reads the previous diagonal at the
    row above and the same row, i.e. the states above and to the left of each pixel."""

    def __init__(self, width: int, hidden: int, colours: int) -> None:
        super().__init__()
        self.input_to_state = MaskedConv2d(width, 4 * hidden, (1, 1), "B", colours, gate_groups(hidden, colours))
        self.state_to_state = nn.Conv1d(hidden, 4 * hidden, 2)  # taps: (row above, same row) of the last column
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        gates_in = skew(self.input_to_state(x))  # (B, 4h, H, H + W - 1)
        # Only real pixels of the skewed map carry state; padding positions stay exactly zero.
        rows = torch.arange(height, device=x.device)[:, None]
        columns = torch.arange(height + width - 1, device=x.device)[None, :]
        real = ((columns >= rows) & (columns < rows + width)).to(x.dtype)  # (H, H + W - 1)
        h = c = x.new_zeros(batch, self.hidden, height)
        diagonals = []
        for k in range(height + width - 1):
            gates = gates_in[:, :, :, k] + self.state_to_state(F.pad(h, (1, 0)))  # (B, 4h, H)
            h, c = lstm_cell(gates, c)
            h, c = h * real[:, k], c * real[:, k]
            diagonals.append(h)
        return unskew(torch.stack(diagonals, dim=3), width)  # (B, h, H, W)


class DiagonalBiLSTMBlock(nn.Module):
    """Diagonal BiLSTM layer: a forward diagonal LSTM (context above and to the left) plus a backward one run
    on the mirrored map (above and to the right), whose output is shifted down one row so that it only sees
    complete rows and stays causal. Together they see every earlier pixel but the last one of the row above
    (which only the first layer's window can reach). Their sum is mapped back
    to ``width`` by a 1 x 1 conv and added to the input."""

    def __init__(self, width: int, colours: int) -> None:
        super().__init__()
        hidden = max(1, width // 2)
        self.forward_lstm = DiagonalLSTM(width, hidden, colours)
        self.backward_lstm = DiagonalLSTM(width, hidden, colours)
        self.residual = MaskedConv2d(hidden, width, (1, 1), "B", colours)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ahead = self.forward_lstm(x)
        behind = self.backward_lstm(x.flip(3)).flip(3)
        behind = F.pad(behind, (0, 0, 1, 0))[:, :, :-1]  # shift down one row: row i sees rows < i only
        return x + self.residual(ahead + behind)


# ---- Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders") -------
#
# Two stacks travel together in one feature map of 2 x width channels, [vertical, horizontal]. The vertical
# stack at row i sees only rows above i, whole rows as wide as its kernels have grown; the horizontal stack
# sees its own row up to the pixel (the usual colour masks at the pixel itself) plus the vertical stack of
# the same row. Together they cover everything before the pixel: no blind spot up and to the right, which a
# masked 3 x 3 stack never reaches however deep it is. Here the vertical stack is kept strictly above its
# row (the first layer's vertical convolution is shifted down a row), so it feeds the horizontal stack of the
# same row with no further shift.


def gate(pre: torch.Tensor) -> torch.Tensor:
    """tanh(filter) * sigmoid(gate), the halves of ``pre`` along channels (B, 2w, ...) -> (B, w, ...)."""
    filter_half, gate_half = pre.chunk(2, dim=1)
    return torch.tanh(filter_half) * torch.sigmoid(gate_half)


class VerticalConv(nn.Module):
    """A ``rows`` x ``kernel`` convolution over rows above: rows i - rows .. i - 1 with ``shift`` (for the
    image), else rows i - rows + 1 .. i (for a vertical stack, which already sees only rows above its own)."""

    def __init__(self, in_channels: int, out_channels: int, rows: int, kernel: int, shift: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (rows, kernel))
        self.half_width, self.reach = kernel // 2, rows if shift else rows - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        padded = F.pad(x, (self.half_width, self.half_width, self.reach, 0))  # nothing below is read
        return self.conv(padded)[:, :, :height]  # with shift, one row too many comes out at the bottom


class GatedStem(nn.Module):
    """The first layer (mask A): the vertical stack from the ``kernel // 2`` image rows above, the horizontal
    stack from the pixels to the left (and earlier colours) plus a 1 x 1 link from the vertical stack."""

    def __init__(self, colours: int, width: int, kernel: int) -> None:
        super().__init__()
        self.vertical = VerticalConv(colours, width, max(1, kernel // 2), kernel, shift=True)
        self.horizontal = MaskedConv2d(colours, width, (1, kernel), "A", colours)
        self.link = nn.Conv2d(width, width, 1)  # rows above only: free of the colour masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vertical = self.vertical(x)  # (B, w, H, W)
        return torch.cat([vertical, self.horizontal(x) + self.link(vertical)], dim=1)  # (B, 2w, H, W)


class GatedBlock(nn.Module):
    """One gated layer: both stacks through gated units, the vertical stack's pre-activations linked into the
    horizontal one (1 x 1), and a residual connection on the horizontal stack (the paper's figure 2)."""

    def __init__(self, width: int, colours: int, kernel: int = 3) -> None:
        super().__init__()
        gate_groups = channel_groups(width, colours).repeat(2)  # the filter half, then the gate half
        self.vertical = VerticalConv(width, 2 * width, kernel // 2 + 1, kernel, shift=False)
        self.horizontal = MaskedConv2d(width, 2 * width, (1, kernel), "B", colours, gate_groups)
        self.link = nn.Conv2d(2 * width, 2 * width, 1)
        self.mix = MaskedConv2d(width, width, (1, 1), "B", colours)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        vertical, horizontal = x.chunk(2, dim=1)  # (B, w, H, W) each
        vertical_pre = self.vertical(vertical)  # (B, 2w, H, W)
        horizontal_pre = self.horizontal(horizontal) + self.link(vertical_pre)
        return torch.cat([gate(vertical_pre), horizontal + self.mix(gate(horizontal_pre))], dim=1)


BLOCKS = {"pixelcnn": ResidualConvBlock, "gated-pixelcnn": GatedBlock, "row-lstm": RowLSTMBlock,
          "diagonal-bilstm": DiagonalBiLSTMBlock}
