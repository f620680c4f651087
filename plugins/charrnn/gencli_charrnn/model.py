"""The character LSTM, its training batches, streaming sampler and held-out evaluation."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gencli.data.text import Vocabulary, load_text, split
from gencli.errors import UsageError
from gencli.metrics.compression import compressed_bits_per_char
from gencli.plugin import EvalRequest, Prepared, SampleRequest, Text
from gencli_charrnn.numpy_lstm import assemble, check_sample_options, start_text


class CharLSTM(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        vocab_size = max(1, len(config.vocab))
        self.embed = nn.Embedding(vocab_size, config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, num_layers=config.num_layers,
                            dropout=config.dropout if config.num_layers > 1 else 0.0, batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, state = self.lstm(self.embed(x), state)  # (B, T, H)
        return self.head(self.drop(h)), state  # (B, T, V)


class Codec(Vocabulary):
    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.indices(text), dtype=torch.long)


class TextBatches:
    """Random windows of the training text: (inputs, targets shifted by one), each (B, T)."""

    def __init__(self, ids: torch.Tensor, seq_length: int) -> None:
        if len(ids) <= seq_length + 1:
            raise UsageError(f"training text has {len(ids)} characters; --seq-length {seq_length} needs more")
        self.ids, self.seq_length = ids, seq_length

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(self.ids) - self.seq_length - 1, (batch_size,), generator=generator)
        offsets = starts[:, None] + torch.arange(self.seq_length + 1)  # (B, T+1)
        window = self.ids[offsets]
        return window[:, :-1], window[:, 1:]


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    text, description = load_text(data)
    train_text, held_out = split(text)
    if len(held_out) < 2:  # checked now, not by the evaluation after training
        raise UsageError(f"--data: the held-out tail has {len(held_out)} character(s); give more text")
    vocab = config.vocab or "".join(sorted(set(text)))
    config.vocab = vocab
    codec = Codec(vocab)
    missing = codec.unknown(train_text)
    if missing:
        raise UsageError(f"training text has characters outside the model's vocabulary: {''.join(missing[:20])!r}")
    return Prepared(config, TextBatches(codec.encode(train_text), options.seq_length), description)


def build(config: Any) -> CharLSTM:
    return CharLSTM(config)


def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], options: Any
         ) -> tuple[torch.Tensor, dict[str, float]]:
    inputs, targets = batch
    logits, _ = model(inputs)
    nats = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
    return nats, {"bits_per_char": float(nats.detach()) / math.log(2)}


def sample(model: CharLSTM, config: Any, options: Any, request: SampleRequest) -> Text:
    codec = Codec(config.vocab)
    check_sample_options(codec, options)
    return Text(assemble(options.prime, request.n, _draws(model, codec, options, request), codec.characters))


def _draws(model: CharLSTM, codec: Codec, options: Any, request: SampleRequest) -> Iterator[list[int]]:
    """One list of N indices per drawn character; -n N runs N streams as one batch."""
    device, n = request.device, request.n
    generator = torch.Generator(device=device).manual_seed(request.seed)
    with torch.inference_mode():
        ids = codec.encode(start_text(codec, options.prime)).to(device).expand(n, -1)  # (N, P)
        logits, state = model(ids)  # one pass over the prime builds the LSTM state
        logits = logits[:, -1]  # (N, V)
        for _ in range(options.length):
            next_ids = _draw(logits, options, generator)  # (N,)
            yield next_ids.tolist()
            logits, state = model(next_ids[:, None], state)  # one cell step per character
            logits = logits[:, -1]


def _draw(logits: torch.Tensor, options: Any, generator: torch.Generator) -> torch.Tensor:
    logits = logits.float() / options.temperature
    if options.top_k > 0:
        kth = torch.topk(logits, min(options.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)[:, 0]


def evaluate(model: CharLSTM, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    """Bits per character on the held-out tail, the LSTM state carried across chunks (as when reading), beside
    what gzip, bzip2 and xz need for the same text (gencli.metrics.compression)."""
    text, description = load_text(request.data)
    train, held_out = split(text)
    request.describe_data(f"{description}: the held-out last 10%, {len(held_out):,} characters")
    codec = Codec(config.vocab)
    missing = codec.unknown(held_out)
    if missing:
        raise UsageError(f"evaluation text has characters the model never saw: {''.join(missing[:20])!r}")
    if len(held_out) < 2:
        raise UsageError(f"the held-out text has {len(held_out)} character(s); bits per character need at least 2")
    ids = codec.encode(held_out).to(request.device)
    streams = min(16, len(ids) - 1)  # contiguous slices evaluated side by side, for speed
    per_stream = (len(ids) - 1) // streams
    inputs = ids[: streams * per_stream].view(streams, per_stream)
    targets = ids[1 : streams * per_stream + 1].view(streams, per_stream)
    total_nats, state = 0.0, None
    for start in range(0, per_stream, options.seq_length):
        logits, state = model(inputs[:, start : start + options.seq_length], state)
        chunk_targets = targets[:, start : start + options.seq_length]
        total_nats += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                            chunk_targets.reshape(-1), reduction="sum"))
    count = targets.numel()
    return {"bits_per_char": total_nats / count / math.log(2), "nats_per_char": total_nats / count,
            "characters": int(count)} | compressed_bits_per_char(train, held_out)
