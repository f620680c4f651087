"""What a run folder says about itself: the model card (README.md) and the loss curve (loss.png)."""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Any

from gencli.files import atomic_write
from gencli.runspec import printable
from gencli.schedule import describe_schedule


def write_model_card(run_dir: Path, plugin: Any, spec: Any, config: Any, data_description: str,
                     metrics: dict[str, float], wall_seconds: float, scored: str = "") -> None:
    import torch

    from gencli import __version__

    engine = dataclasses.asdict(spec.engine)
    arch = {k: v for k, v in dataclasses.asdict(config).items() if not (isinstance(v, str) and len(v) > 80)}
    figures = "\n".join(f"| {k} | {format_figure(v)} |" for k, v in metrics.items())
    # The exact commands, in order: the one that started the run, then each --resume.
    resumed = list(getattr(spec, "resumed", []))
    commands = "\n".join([spec.command, *resumed])
    sessions = f" over {len(resumed) + 1} sessions" if resumed else ""
    schedule = describe_schedule(spec.engine)
    card = f"""---
library_name: gencli
tags:
- gencli
- {plugin.name}
- {plugin.modality}
---

# {plugin.name}: {plugin.summary}

Trained with gencli {__version__} (torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} CPU thread(s)).

## Recipe

```
{commands}
```

- data: {data_description}
- steps: {spec.engine.steps}, batch size {spec.engine.batch_size}, seed {spec.engine.seed}
- learning rate: {schedule}
- wall time: {wall_seconds:.1f} s of training{sessions}
- preset: {spec.preset or "none"}
{precision_line(spec)}
## Evaluation (held-out split, `gencli evaluate {plugin.name} --weights THIS_FOLDER --json`)
{f"{chr(10)}- scored on: {scored}{chr(10)}" if scored else ""}
| metric | value |
|---|---|
{figures}

## Architecture (config.json)

```json
{json.dumps(arch, indent=2, sort_keys=True, default=str)}
```

## Training settings (run.json)

```json
{json.dumps({"engine": engine, "options": spec.options}, indent=2, sort_keys=True, default=str)}
```

Use it: `gencli sample {plugin.name} --weights THIS_FOLDER` (or the Hub repo id once pushed).
"""
    atomic_write(run_dir / "README.md", printable(card).encode("utf-8"))  # a path may hold non-UTF-8 bytes


def precision_line(spec: Any) -> str:
    """The precision the run trained in and why (run.json's ``resolved``), as a recipe line."""
    resolved = getattr(spec, "resolved", None) or {}
    if "precision" not in resolved:
        return ""
    return f"- precision: {resolved['precision']} ({resolved.get('precision_reason', '')})\n"


def format_figure(value: float) -> str:
    """Counts as integers, everything else to 4 decimals (what `gencli evaluate` prints)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4f}"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
    return rows


def write_loss_curve(metrics_path: Path, png_path: Path, size: tuple[int, int] = (640, 360)) -> None:
    """A plain loss-against-step plot, drawn with Pillow (no plotting dependency for one line chart)."""
    from PIL import Image, ImageDraw

    points = [(row["step"], row["loss"]) for row in read_metrics(metrics_path) if "loss" in row]
    if len(points) < 2:
        return
    width, height = size
    left, right, top, bottom = 60, 20, 20, 40
    steps = [p[0] for p in points]
    losses = [p[1] for p in points]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(losses), max(losses)
    y1 = y1 if y1 > y0 else y0 + 1.0
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([left, top, width - right, height - bottom], outline="black")

    def xy(step: float, loss: float) -> tuple[float, float]:
        x = left + (step - x0) / max(x1 - x0, 1) * (width - left - right)
        y = height - bottom - (loss - y0) / (y1 - y0) * (height - top - bottom)
        return x, y

    draw.line([xy(s, v) for s, v in points], fill=(31, 119, 180), width=2)
    draw.text((left, height - bottom + 8), f"step {x0}", fill="black")
    draw.text((width - right - 80, height - bottom + 8), f"step {x1}", fill="black")
    draw.text((4, top), f"{y1:.3g}", fill="black")
    draw.text((4, height - bottom - 12), f"{y0:.3g}", fill="black")
    draw.text((width // 2 - 30, 4), "training loss", fill="black")
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(png_path, buffer.getvalue())
