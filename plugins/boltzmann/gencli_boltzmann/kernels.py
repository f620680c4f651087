"""The RBM's CD / PCD step for float32 on the CPU, as two numba kernels (``rbm.gradients`` calls them there).

Every product in the step has a 0/1 factor (MNIST's pixels are 13% on, the hidden units of an RBM in training 10
to 25%), and a dense sgemm multiplies every zero. The kernels sum the rows of W (or W^T) that the ones pick,
eight rows per pass (about 20 billion adds a second on one AVX2 thread of an AMD EPYC): for 100 x 784 states at
13% that is 0.25 ms against 1.0 ms for the sgemm. The torch step is also some 60 small operations, whose
dispatch and allocations are most of a step at batch 10. Here the Gibbs sweeps run as one call, ``gibbs``, and
the statistics as another, ``statistics``, with torch's vectorised sigmoid between them (numba's exp is scalar).

Sampling needs no sigmoid at all: ``common.bernoulli16`` turns a probability p and 16 random bits u into
u < 65536 p - 32768, and with k = u + 32768 that is p > k / 65536, i.e. x > logit(k / 65536) for the unit's
input x. ``LOGIT[k]`` holds those 65,536 thresholds, so a sample is one table look-up and one comparison, from
the same random bits, in the same order, as the torch step draws them (``bit_blocks``; ``rbm.kernel_gradients``
draws them all at once). The two steps' samples differ only where an input rounds differently across a
threshold, which the tests have not yet seen happen.
"""

from __future__ import annotations

import numpy as np

from gencli_boltzmann.compiled import njit


def logit_table() -> np.ndarray:
    """logit(k / 65536) for k = 0 .. 65535, in float32 (k = 0: -inf, every unit with p > 0 turns on)."""
    k = np.arange(65536, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return (np.log(k) - np.log(65536.0 - k)).astype(np.float32)


LOGIT = logit_table()


@njit
def fill_bits(seed, first, out):  # pragma: no cover - compiled
    """Words first .. first + len(out) - 1 of the splitmix64 stream of ``seed`` into ``out`` (``common.RandomBits``;
    ``common.splitmix64`` is the numpy twin)."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    base = np.uint64(seed) + np.uint64(first) * golden
    for i in range(out.shape[0]):
        z = base + np.uint64(i + 1) * golden
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        out[i] = z ^ (z >> np.uint64(31))


@njit
def _ones(states, where):  # pragma: no cover - compiled
    """The columns of the ones of a 0/1 row, into ``where``; returns how many. Branch-free: every column is
    written and the count advances on the ones only (15x faster than a branch on random 0/1 states)."""
    count = 0
    for i in range(states.shape[0]):
        where[count] = i
        count += states[i] != 0
    return count


@njit
def _picked_sum(table, where, count, bias, out):  # pragma: no cover - compiled
    """out = bias + the sum of the rows of ``table`` listed in where[:count] (a 0/1 row times ``table``)."""
    width = out.shape[0]
    for j in range(width):
        out[j] = bias[j]
    at = 0
    while at + 8 <= count:  # eight rows per pass: an eighth of the loads and stores of ``out`` (15% faster than 4)
        a, b, c, d = table[where[at]], table[where[at + 1]], table[where[at + 2]], table[where[at + 3]]
        e, f, g, h = table[where[at + 4]], table[where[at + 5]], table[where[at + 6]], table[where[at + 7]]
        for j in range(width):
            out[j] += ((a[j] + b[j]) + (c[j] + d[j])) + ((e[j] + f[j]) + (g[j] + h[j]))
        at += 8
    if at + 4 <= count:
        a, b, c, d = table[where[at]], table[where[at + 1]], table[where[at + 2]], table[where[at + 3]]
        for j in range(width):
            out[j] += (a[j] + b[j]) + (c[j] + d[j])
        at += 4
    while at < count:
        a = table[where[at]]
        for j in range(width):
            out[j] += a[j]
        at += 1


@njit
def _sample(inputs, bits, start, logit, out, where):  # pragma: no cover - compiled
    """out[j] = 1 where inputs[j] > logit(k / 65536), k the j-th 16-bit draw from ``start`` (see the module);
    the columns of the ones into ``where``, returning how many (as ``_ones``)."""
    count = 0
    for j in range(inputs.shape[0]):
        on = inputs[j] > logit[bits[start + j] + 32768]
        out[j] = 1.0 if on else 0.0
        where[count] = j
        count += on
    return count


def pixel_thresholds() -> np.ndarray:
    """For each 8-bit intensity p, the bound 65536 (p / 255) - 32768 that ``common.bernoulli16`` compares its 16-bit
    draws with, computed in float32 as it does: the batch's binarization in the kernel takes its samples."""
    probability = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return probability * np.float32(65536.0) - np.float32(32768.0)


PIXEL_THRESHOLDS = pixel_thresholds()


@njit
def _binarize(pixels, bits, start, thresholds, out, where):  # pragma: no cover - compiled
    """A row of 8-bit intensities binarized, P(1) = p / 255, by the j-th 16-bit draw from ``start``, into ``out``;
    the columns of the ones into ``where``, returning how many (as ``_sample``)."""
    count = 0
    for j in range(pixels.shape[0]):
        on = bits[start + j] < thresholds[pixels[j]]
        out[j] = 1.0 if on else 0.0
        where[count] = j
        count += on
    return count


@njit
def _transpose(weight, transposed):  # pragma: no cover - compiled
    """transposed = W^T, eight rows of W at a time: each row of W^T receives 32 contiguous bytes per visit rather than
    one float (0.16 ms against 0.25 for a float at a time and 0.35 for torch's copy of W.T, 784 x 500, one AVX2
    thread)."""
    visible, hidden = weight.shape
    whole = visible - visible % 8
    for i in range(0, whole, 8):
        a, b, c, d = weight[i], weight[i + 1], weight[i + 2], weight[i + 3]
        e, f, g, h = weight[i + 4], weight[i + 5], weight[i + 6], weight[i + 7]
        for j in range(hidden):
            row = transposed[j]
            row[i], row[i + 1], row[i + 2], row[i + 3] = a[j], b[j], c[j], d[j]
            row[i + 4], row[i + 5], row[i + 6], row[i + 7] = e[j], f[j], g[j], h[j]
    for i in range(whole, visible):
        for j in range(hidden):
            transposed[j, i] = weight[i, j]


def bit_blocks(persistent: bool, k: int, batch: int, chains: int, monitored: int, visible: int, hidden: int,
               binarize: bool = False) -> list[int]:
    """How many 16-bit draws each sampling of the torch step takes, in its order (``rbm.data_states`` when the batch
    comes as intensities, ``rbm.negative_phase``, then ``rbm.keep_chains``)."""
    blocks = [batch * visible] if binarize else []
    if persistent:
        blocks += [monitored * hidden, chains * visible]
    else:
        blocks += [batch * hidden, batch * visible]
    blocks += [chains * hidden, chains * visible] * (k - 1)
    return blocks + [chains * hidden] if persistent else blocks


@njit
def gibbs(weight, transposed, visible_bias, hidden_bias, pixels, binarize, thresholds, data, chain_hidden, persistent,
          k, monitored, logit, bits, starts, data_input, reconstruction_input, negative, negative_input, kept_hidden,
          ones, counts, where, hidden_state, visible_input):  # pragma: no cover - compiled
    """The sampling half of a CD-k / PCD-k step: everything ``rbm.data_states``, ``rbm.negative_phase`` and
    ``rbm.keep_chains`` draw.

    The batch comes as ``pixels`` (B x V, uint8): intensities that ``binarize`` turns into 0/1 states by the first
    block of draws and ``thresholds`` (``PIXEL_THRESHOLDS``), or states already 0/1 when it is False; either way
    the states are written to ``data`` (B x V float32).
    Fills the hidden inputs of the data (data_input, B x H) and of the negative samples (negative_input), the
    visible inputs of the monitored reconstruction (reconstruction_input, before the sigmoid), the negative
    visible samples and, for PCD, the chains' next hidden samples (kept_hidden, which may be chain_hidden
    itself). ``transposed`` receives W^T, laid out for the down products; ``starts`` where each block of
    ``bit_blocks`` begins.
    ``ones`` and ``counts`` receive the columns of the ones of each negative sample (rows 0 .. C-1) and each
    data row (C .. C+B-1), for ``statistics``; where, hidden_state and visible_input are scratch rows.
    """
    rows, chains = data.shape[0], negative.shape[0]
    hidden, visible = hidden_state.shape[0], visible_input.shape[0]
    _transpose(weight, transposed)
    block = 1 if binarize else 0
    for r in range(rows):
        if binarize:
            counts[chains + r] = _binarize(pixels[r], bits, starts[0] + r * visible, thresholds, data[r],
                                           ones[chains + r])
        else:
            for i in range(visible):
                data[r, i] = 1.0 if pixels[r, i] != 0 else 0.0
            counts[chains + r] = _ones(pixels[r], ones[chains + r])
        _picked_sum(weight, ones[chains + r], counts[chains + r], hidden_bias, data_input[r])
    if persistent:
        for r in range(monitored):  # the reconstruction that monitors training, of the first rows
            count = _sample(data_input[r], bits, starts[block] + r * hidden, logit, hidden_state, where)
            _picked_sum(transposed, where, count, visible_bias, reconstruction_input[r])
        for r in range(chains):  # the chains continue from their kept hidden samples
            count = _ones(chain_hidden[r], where)
            _picked_sum(transposed, where, count, visible_bias, visible_input)
            counts[r] = _sample(visible_input, bits, starts[block + 1] + r * visible, logit, negative[r], ones[r])
    else:
        for r in range(rows):  # CD: one sweep from the data, its reconstruction sampled
            count = _sample(data_input[r], bits, starts[block] + r * hidden, logit, hidden_state, where)
            _picked_sum(transposed, where, count, visible_bias, reconstruction_input[r])
            counts[r] = _sample(reconstruction_input[r], bits, starts[block + 1] + r * visible, logit, negative[r],
                                ones[r])
    block += 2
    for _ in range(k - 1):
        for r in range(chains):
            _picked_sum(weight, ones[r], counts[r], hidden_bias, negative_input[r])
            count = _sample(negative_input[r], bits, starts[block] + r * hidden, logit, hidden_state, where)
            _picked_sum(transposed, where, count, visible_bias, visible_input)
            counts[r] = _sample(visible_input, bits, starts[block + 1] + r * visible, logit, negative[r], ones[r])
        block += 2
    for r in range(chains):
        _picked_sum(weight, ones[r], counts[r], hidden_bias, negative_input[r])
        if persistent:
            _sample(negative_input[r], bits, starts[block] + r * hidden, logit, kept_hidden[r], where)


@njit
def statistics(data, data_hidden, negative_hidden, reconstruction, ones, counts, weight_grad, visible_grad,
               hidden_grad, scaled, column_counts, offsets, members):  # pragma: no cover - compiled
    """The CD gradient of ``rbm.gradients``: <v h^T>_negative - <v h^T>_data into weight_grad (V x H), and the
    biases' into visible_grad and hidden_grad, from the hidden probabilities and the ones of the visible states
    (``gibbs``'s ``ones`` and ``counts``: the C negative rows, then the B data rows).

    Each row of weight_grad is written once: the sum of the (scaled) hidden probabilities of the rows whose
    visible unit is on, listed per unit (``members``) from the rows' lists of ones. Returns the monitor,
    ``rbm.reconstruction_error`` of the first rows of ``data`` and their ``reconstruction`` probabilities.
    """
    rows, chains = data_hidden.shape[0], negative_hidden.shape[0]
    visible, hidden = weight_grad.shape
    for r in range(chains):
        for j in range(hidden):
            scaled[r, j] = negative_hidden[r, j] / chains
    for r in range(rows):
        for j in range(hidden):
            scaled[chains + r, j] = data_hidden[r, j] / -rows
    for j in range(hidden):
        hidden_grad[j] = 0.0
    for r in range(chains + rows):
        for j in range(hidden):
            hidden_grad[j] += scaled[r, j]
    for i in range(visible):
        column_counts[i] = 0
    for r in range(chains):
        for a in range(counts[r]):
            column_counts[ones[r, a]] += 1
    for i in range(visible):
        visible_grad[i] = column_counts[i]  # the negative rows' ones, for now
    for r in range(chains, chains + rows):
        for a in range(counts[r]):
            column_counts[ones[r, a]] += 1
    for i in range(visible):  # mean over the negative rows minus mean over the data, as torch computes them
        visible_grad[i] = np.float32(visible_grad[i]) / chains - np.float32(column_counts[i] - visible_grad[i]) / rows
    offsets[0] = 0
    for i in range(visible):
        offsets[i + 1] = offsets[i] + column_counts[i]
    fill = offsets[:visible].copy()
    for r in range(chains + rows):
        for a in range(counts[r]):
            i = ones[r, a]
            members[fill[i]] = r
            fill[i] += 1
    zeros = np.zeros(hidden, np.float32)
    for i in range(visible):
        _picked_sum(scaled, members[offsets[i]:offsets[i + 1]], column_counts[i], zeros, weight_grad[i])
    error = 0.0
    for r in range(reconstruction.shape[0]):
        for i in range(visible):
            gap = data[r, i] - reconstruction[r, i]
            error += gap * gap
    return error / reconstruction.shape[0]

