"""Text corpora: any UTF-8 file or folder of .txt files, or the embedded ``pydoc-topics`` corpus.

``pydoc-topics`` is the language reference that every CPython ships in ``pydoc_data.topics`` (about 465,000
characters of English prose and code), so a first run needs no download.
"""

from __future__ import annotations

from gencli.data.sources import local_path
from gencli.errors import UsageError

EMBEDDED = "pydoc-topics"
HELD_OUT_FRACTION = 0.1  # the last 10% of the text is the held-out split, never trained on


def embedded_corpus() -> str:
    from pydoc_data.topics import topics

    # Sorted by topic name so the corpus (and the held-out split) is the same on every machine.
    return "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"


def load_text(source: str | None) -> tuple[str, str]:
    """(text, one-line description) for a --data SRC."""
    if source is None or source == EMBEDDED:
        text = embedded_corpus()
        return text, f"{EMBEDDED} (embedded: Python's pydoc_data.topics, {len(text):,} characters)"
    path = local_path(source)
    files = sorted(p for p in path.rglob("*.txt") if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise UsageError(f"--data {source}: no .txt files in that folder")
    parts = []
    for file in files:
        try:
            parts.append(file.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise UsageError(f"--data {file}: not UTF-8 text (byte {error.start})") from None
    text = "\n".join(parts)
    if len(text) < 100:
        raise UsageError(f"--data {source}: only {len(text)} characters; a character model needs more text")
    return text, f"{source} ({len(files)} file(s), {len(text):,} characters)"


def split(text: str) -> tuple[str, str]:
    """(train, held-out): a contiguous tail is held out so no held-out sentence leaks into training."""
    cut = int(len(text) * (1 - HELD_OUT_FRACTION))
    return text[:cut], text[cut:]


class Vocabulary:
    """Characters <-> indices in the order of ``characters`` (a model saves that string in its config)."""

    def __init__(self, characters: str) -> None:
        self.characters = characters
        self.index = {ch: i for i, ch in enumerate(characters)}

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` outside the vocabulary, sorted (for a one-line refusal)."""
        return sorted(set(text) - set(self.index))

    def indices(self, text: str) -> list[int]:
        return [self.index[ch] for ch in text]
