"""Fast generation by caching every layer's activations (Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models"): once a pixel is drawn, each layer computes its output at that one
pixel only, from inputs it keeps.

What makes it cheap here is splitting each layer's receptive field in two:

* the rows above: final once a row starts, so their contribution to the whole row is one convolution per
  layer per row (``start_row``): a masked convolution's upper kernel rows, the Gated PixelCNN's whole
  vertical stack, the Row LSTM's state-to-state convolution;
* the current row up to the pixel: a few taps at one pixel per layer per pixel (``pixel``), a small matrix
  product on (B, channels) vectors; the Row and Diagonal LSTMs take one cell step there.

``end_row`` commits what the next row reads (input rows, LSTM states) and runs the Diagonal BiLSTM's backward
sweep over the finished row. A layer's pixel output is final after the last call for that pixel: masks make
no feature at (i, j) depend on the last colour of (i, j), the only value set after it.

Layouts: per-row tensors are (B, W, C), so one pixel is the (B, C) matrix ``row[:, j]``; input rows buffered
for the current row carry ``half_width`` zero columns on the left, so a pixel's taps are one slice,
(B, taps, C), flattened tap-major to match the weight matrices below. Weights are read (masked and
reshaped) when the caches are made: the model must not change while sampling.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gencli_pixelrnn.layers import (DiagonalBiLSTMBlock, DiagonalLSTM, GatedBlock, GatedStem, MaskedConv2d,
                                    ResidualConvBlock, RowLSTMBlock, VerticalConv, gate, lstm_cell)


class ConvSplit:
    """A ``MaskedConv2d`` split into its rows above (a convolution over a row) and its current-row taps
    (a matrix on one pixel's taps, tap-major: (out, (half_width + 1) * in))."""

    def __init__(self, conv: MaskedConv2d) -> None:
        weight = conv.weight * conv.mask  # (out, in, reach + 1, kw)
        self.reach, self.half_width = conv.reach, conv.half_width
        self.above = weight[:, :, :-1].contiguous() if self.reach else None  # (out, in, reach, kw)
        self.current = weight[:, :, -1, :self.half_width + 1].permute(0, 2, 1).flatten(1).contiguous()
        self.bias = conv.bias

    def row(self, rows: torch.Tensor | None) -> torch.Tensor:
        """Rows above (B, in, reach, W) -> their contribution plus the bias for the whole row, (B, W, out)."""
        if self.above is None:
            return self.bias.expand(1, 1, -1)
        out = F.conv2d(F.pad(rows, (self.half_width, self.half_width, 0, 0)), self.above, self.bias)
        return out[:, :, 0].transpose(1, 2)  # (B, W, out)

    def taps(self, buffer: torch.Tensor, j: int) -> torch.Tensor:
        """The current row's contribution at pixel j from a left-padded buffer (B, half_width + W, in)."""
        return F.linear(buffer[:, j:j + self.half_width + 1].flatten(1), self.current)


def linear_of(conv: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1 x 1 convolution (masked or plain) as a (weight (out, in), bias) pair for ``F.linear``."""
    weight = conv.weight * conv.mask if isinstance(conv, MaskedConv2d) else conv.weight
    return weight.flatten(1).contiguous(), conv.bias


class RowsAbove:
    """The last ``count`` finished rows of a layer's input, (B, C, count, W), zeros above the image."""

    def __init__(self, like: torch.Tensor, batch: int, channels: int, count: int, width: int) -> None:
        self.rows = like.new_zeros(batch, channels, count, width)

    def push(self, row: torch.Tensor) -> None:
        """Append a finished row (B, W, C)."""
        if self.rows.shape[2]:
            self.rows = torch.cat([self.rows[:, :, 1:], row.transpose(1, 2)[:, :, None]], dim=2)


class CurrentRow:
    """The current row of a layer's input, (B, pad + W, C), ``pad`` zero columns on the left."""

    def __init__(self, like: torch.Tensor, batch: int, channels: int, width: int, pad: int) -> None:
        self.pad = pad
        self.values = like.new_zeros(batch, pad + width, channels)

    def put(self, j: int, value: torch.Tensor) -> None:
        self.values[:, self.pad + j] = value

    @property
    def row(self) -> torch.Tensor:
        return self.values[:, self.pad:]  # (B, W, C)


# ---- the first layer: reads the image ----------------------------------------------------------------------------


class MaskedStemCache:
    """PixelCNN's k x k mask-A convolution over the image. The image enters through ``set`` (the sampler's
    drawn or given values), so the current row always holds every colour written so far."""

    def __init__(self, stem: MaskedConv2d, batch: int, width: int, like: torch.Tensor) -> None:
        colours = stem.weight.shape[1]
        self.split = ConvSplit(stem)
        self.above = RowsAbove(like, batch, colours, stem.reach, width)
        self.current = CurrentRow(like, batch, colours, width, stem.half_width)

    def set(self, j: int, channel: int, value: torch.Tensor) -> None:
        self.current.values[:, self.current.pad + j, channel] = value

    def start_row(self, i: int) -> None:
        self.row = self.split.row(self.above.rows)

    def pixel(self, j: int) -> torch.Tensor:
        return self.split.taps(self.current.values, j) + self.row[:, j]

    def end_row(self) -> None:
        self.above.push(self.current.row)


class GatedStemCache(MaskedStemCache):
    """The Gated PixelCNN's first layer: the vertical stack over the image rows above (once per row, and
    its 1 x 1 link into the horizontal stack with it), and the horizontal mask-A taps at each pixel."""

    def __init__(self, stem: GatedStem, batch: int, width: int, like: torch.Tensor) -> None:
        colours = stem.horizontal.weight.shape[1]
        self.split = ConvSplit(stem.horizontal)
        self.vertical = stem.vertical
        self.link = linear_of(stem.link)
        self.above = RowsAbove(like, batch, colours, stem.vertical.reach, width)
        self.current = CurrentRow(like, batch, colours, width, self.split.half_width)

    def start_row(self, i: int) -> torch.Tensor:
        vertical = vertical_row(self.vertical, self.above.rows)  # (B, w, W)
        self.row = F.linear(vertical.transpose(1, 2), *self.link) + self.split.bias  # (B, W, w)
        return vertical


def vertical_row(conv: VerticalConv, rows: torch.Tensor) -> torch.Tensor:
    """A vertical-stack convolution's output row from exactly the rows it reads (B, in, rows, W) -> (B, out, W)."""
    padded = F.pad(rows, (conv.half_width, conv.half_width, 0, 0))
    return conv.conv(padded)[:, :, 0]


# ---- the residual layers ------------------------------------------------------------------------------------------


class ResidualConvCache:
    """PixelCNN block x + mix(relu(conv(relu(x)))): the 3 x 3 conv's upper row once per row, its current-row
    taps (j - 1, j) and the 1 x 1 mix at each pixel. The buffers hold relu(x), what the conv reads."""

    def __init__(self, block: ResidualConvBlock, batch: int, width: int, like: torch.Tensor) -> None:
        channels = block.conv.weight.shape[1]
        self.split, self.mix = ConvSplit(block.conv), linear_of(block.mix)
        self.above = RowsAbove(like, batch, channels, block.conv.reach, width)
        self.current = CurrentRow(like, batch, channels, width, self.split.half_width)

    def start_row(self, i: int, vertical: Any) -> None:
        self.row = self.split.row(self.above.rows)

    def pixel(self, j: int, x: torch.Tensor) -> torch.Tensor:
        self.current.put(j, F.relu(x))
        hidden = F.relu(self.split.taps(self.current.values, j) + self.row[:, j])
        return x + F.linear(hidden, *self.mix)

    def end_row(self) -> None:
        self.above.push(self.current.row)


class GatedCache:
    """One gated layer. Row start: the vertical stack's pre-activations for the whole row from its input rows
    (i - 1, i), gated into the next layer's vertical input, and linked (1 x 1) into this row's horizontal
    pre-activations. Each pixel: the horizontal 1 x 3 taps (j - 1, j), the gate, the 1 x 1 mix, the residual."""

    def __init__(self, block: GatedBlock, batch: int, width: int, like: torch.Tensor) -> None:
        channels = block.mix.weight.shape[0]
        self.vertical = block.vertical
        self.split, self.link, self.mix = ConvSplit(block.horizontal), linear_of(block.link), linear_of(block.mix)
        self.above = RowsAbove(like, batch, channels, block.vertical.reach, width)  # vertical input rows
        self.current = CurrentRow(like, batch, channels, width, self.split.half_width)  # horizontal input

    def start_row(self, i: int, vertical: torch.Tensor) -> torch.Tensor:
        rows = torch.cat([self.above.rows, vertical[:, :, None]], dim=2)  # (B, w, reach + 1, W)
        self.above.push(vertical.transpose(1, 2))  # row i of the vertical input is final already
        pre = vertical_row(self.vertical, rows)  # (B, 2w, W)
        self.row = F.linear(pre.transpose(1, 2), *self.link) + self.split.bias  # (B, W, 2w)
        return gate(pre)

    def pixel(self, j: int, x: torch.Tensor) -> torch.Tensor:
        self.current.put(j, x)
        pre = self.split.taps(self.current.values, j) + self.row[:, j]  # (B, 2w)
        return x + F.linear(gate(pre), *self.mix)

    def end_row(self) -> None:
        return None


class RowLSTMCache:
    """Row LSTM: the state-to-state 1 x 3 conv over the row above's hidden states once per row; each pixel the
    input-to-state taps (j - 1, j), one LSTM cell from the cell state above, and the 1 x 1 residual."""

    def __init__(self, block: RowLSTMBlock, batch: int, width: int, like: torch.Tensor) -> None:
        channels, hidden = block.residual.weight.shape[0], block.hidden
        self.split, self.residual = ConvSplit(block.input_to_state), linear_of(block.residual)
        self.state_to_state = block.state_to_state
        self.current = CurrentRow(like, batch, channels, width, self.split.half_width)
        self.h, self.c = like.new_zeros(batch, width, hidden), like.new_zeros(batch, width, hidden)  # row above
        self.row_h, self.row_c = self.h.clone(), self.c.clone()  # this row so far

    def start_row(self, i: int, vertical: Any) -> None:
        self.row = self.state_to_state(self.h.transpose(1, 2)).transpose(1, 2) + self.split.bias  # (B, W, 4h)

    def pixel(self, j: int, x: torch.Tensor) -> torch.Tensor:
        self.current.put(j, x)
        gates = self.split.taps(self.current.values, j) + self.row[:, j]  # (B, 4h)
        h, c = lstm_cell(gates, self.c[:, j])
        self.row_h[:, j], self.row_c[:, j] = h, c
        return x + F.linear(h, *self.residual)

    def end_row(self) -> None:
        self.h, self.c = self.row_h, self.row_c
        self.row_h, self.row_c = torch.zeros_like(self.h), torch.zeros_like(self.c)


class DiagonalCell:
    """One direction's LSTM cell at one pixel: input-to-state (1 x 1) and the state-to-state taps on the
    neighbour above and the one beside."""

    def __init__(self, lstm: DiagonalLSTM) -> None:
        self.input = linear_of(lstm.input_to_state)
        weight = lstm.state_to_state.weight  # (4h, h, 2): taps (row above, same row)
        self.above, self.beside = weight[:, :, 0].contiguous(), weight[:, :, 1].contiguous()
        self.bias = lstm.state_to_state.bias

    def __call__(self, gates_in: torch.Tensor, above: torch.Tensor, beside: torch.Tensor,
                 beside_cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gates = gates_in + F.linear(above, self.above, self.bias) + F.linear(beside, self.beside)
        return lstm_cell(gates, beside_cell)


class DiagonalBiLSTMCache:
    """Diagonal BiLSTM: each pixel one forward cell (its neighbours above and to the left are final) plus the
    residual over forward and shifted backward states; each finished row one backward sweep, right to left,
    which the next row reads."""

    def __init__(self, block: DiagonalBiLSTMBlock, batch: int, width: int, like: torch.Tensor) -> None:
        channels, hidden = block.residual.weight.shape[0], block.hidden
        self.forward, self.backward = DiagonalCell(block.forward_lstm), DiagonalCell(block.backward_lstm)
        self.residual = linear_of(block.residual)
        self.current = CurrentRow(like, batch, channels, width, 0)
        zeros = like.new_zeros(batch, width + 1, hidden)  # column 0: the zero state left of the image
        self.h = zeros[:, 1:].clone()  # forward states of the row above
        self.row_h, self.row_c = zeros.clone(), zeros.clone()  # forward states of this row, shifted by one
        self.behind = self.h.clone()  # backward states of the row above: this row's shifted backward input

    def start_row(self, i: int, vertical: Any) -> None:
        return None

    def pixel(self, j: int, x: torch.Tensor) -> torch.Tensor:
        self.current.put(j, x)
        h, c = self.forward(F.linear(x, *self.forward.input), self.h[:, j], self.row_h[:, j], self.row_c[:, j])
        self.row_h[:, j + 1], self.row_c[:, j + 1] = h, c
        return x + F.linear(h + self.behind[:, j], *self.residual)

    def end_row(self) -> None:
        gates = F.linear(self.current.row, *self.backward.input)  # (B, W, 4h)
        width = gates.shape[1]
        back_h, back_c = torch.zeros_like(self.row_h), torch.zeros_like(self.row_c)  # column W: right of the image
        for j in range(width - 1, -1, -1):
            back_h[:, j], back_c[:, j] = self.backward(gates[:, j], self.behind[:, j], back_h[:, j + 1],
                                                       back_c[:, j + 1])
        self.behind = back_h[:, :width]
        self.h = self.row_h[:, 1:]
        self.row_h, self.row_c = torch.zeros_like(self.row_h), torch.zeros_like(self.row_c)


STEMS = {MaskedConv2d: MaskedStemCache, GatedStem: GatedStemCache}
BLOCKS = {ResidualConvBlock: ResidualConvCache, GatedBlock: GatedCache, RowLSTMBlock: RowLSTMCache,
          DiagonalBiLSTMBlock: DiagonalBiLSTMCache}


class Head:
    """ReLU, 1 x 1, ReLU, 1 x 1 at one pixel: (B, w) -> logits (B, C, K)."""

    def __init__(self, model: Any) -> None:
        self.hidden, self.out = linear_of(model.head[1]), linear_of(model.head[3])
        self.shape = (model.colours, model.logits_per_channel)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = F.linear(F.relu(F.linear(F.relu(x), *self.hidden)), *self.out)
        return logits.unflatten(1, self.shape)
