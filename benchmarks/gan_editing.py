"""iGAN-style editing on a bundled GAN (gencli.editing, the search behind `gencli serve`'s editing panel):
does a colour stroke pull the picture toward the painted colour while the result stays a digit, and how long
does one edit take?

    .venv/bin/python benchmarks/gan_editing.py [--plugin dcgan] [--edits 20] [--threads 1] [--json]

Each edit starts from the image of seed S (what `gencli sample dcgan -n 1 --seed S` draws) and paints one random
stroke: a thick line between two random points, in white (ink) or black (background), the opposite of what
the image mostly has there, so every stroke asks for a real change. Reported per edit: the masked colour error
of the start image and of the best candidate (the fall, in %), the shared digit classifier's confidence in its
own top class for the best candidate (gencli.metrics.digits; "it stays a digit"), and the wall time of the
search (32 candidates x 25 Adam steps, iGAN's figures). The classifier and the start images are measured in the
same run, so the confidence on the unedited start images is the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, summary  # noqa: E402

from gencli import registry  # noqa: E402
from gencli.commands import options_instance  # noqa: E402
from gencli.editing import Strokes, edit_search  # noqa: E402
from gencli.metrics.digits import classifier_for  # noqa: E402
from gencli.sampling import load_sampler  # noqa: E402


def random_stroke(image: torch.Tensor, generator: torch.Generator, width: float = 2.5) -> Strokes:
    """A thick segment between two random points, painted the opposite of the image's mean along it."""
    channels, height, width_px = image.shape
    (y0, x0, y1, x1) = (torch.rand(4, generator=generator) * torch.tensor([height, width_px] * 2)).tolist()
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width_px) + 0.5, indexing="ij")
    dx, dy = x1 - x0, y1 - y0
    t = (((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-6)).clamp(0, 1)
    distance = ((xs - (x0 + t * dx)).square() + (ys - (y0 + t * dy)).square()).sqrt()
    mask = (distance <= width / 2).float()  # (H, W)
    under = float((image.mean(0) * mask).sum() / mask.sum().clamp_min(1))
    colour = torch.full((channels, height, width_px), 0.0 if under > 0.5 else 1.0)
    return Strokes(colour=colour, colour_mask=mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="dcgan")
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pull", type=float, default=None, help="the pull toward the start latent (default: "
                                                                  "gencli.editing's)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    plugin = registry.load(args.plugin)
    options = options_instance(plugin.SampleOptions, {})
    sampler = load_sampler(plugin, options, weights=None, revision=None, device="cpu", threads=args.threads,
                           quiet=True)
    editor = plugin.latent_editor(sampler.loaded.model, sampler.loaded.config, options)
    from gencli_gan.training import training_images

    classifier = classifier_for(training_images(sampler.loaded.config.training_data, sampler.loaded.config)).eval()
    generator = torch.Generator().manual_seed(0)
    rows = []
    for seed in range(args.edits):
        start = editor.latent_of_seed(seed)
        with torch.no_grad():
            start_image = editor.generate(start[None])[0].clamp(0, 1)
        strokes = random_stroke(start_image, generator)
        began = time.perf_counter()
        pull = {} if args.pull is None else {"pull": args.pull}
        result = edit_search(editor.generate, start, strokes, seed=seed, **pull)
        seconds = time.perf_counter() - began
        with torch.no_grad():
            confidence = classifier(result.images[:1]).softmax(1).max().item()
            start_confidence = classifier(start_image[None]).softmax(1).max().item()
        fall = 1 - float(result.colour_errors[0]) / max(result.start_colour_error, 1e-12)
        rows.append({"seed": seed, "start_error": result.start_colour_error,
                     "best_error": float(result.colour_errors[0]), "fall": fall, "confidence": confidence,
                     "start_confidence": start_confidence, "seconds": seconds})
    report = {"plugin": args.plugin, "edits": rows, "machine": describe(),
              "median_fall": statistics.median(r["fall"] for r in rows),
              "mean_fall": statistics.fmean(r["fall"] for r in rows),
              "mean_confidence": statistics.fmean(r["confidence"] for r in rows),
              "min_confidence": min(r["confidence"] for r in rows),
              "mean_start_confidence": statistics.fmean(r["start_confidence"] for r in rows),
              "median_seconds": statistics.median(r["seconds"] for r in rows)}
    if args.json:
        print(json.dumps(report))
        return
    print(summary(report["machine"]))
    print(f"{'seed':>4} {'start err':>10} {'best err':>9} {'fall':>6} {'conf':>5} {'start conf':>10} {'s':>6}")
    for r in rows:
        print(f"{r['seed']:>4} {r['start_error']:>10.4f} {r['best_error']:>9.4f} {r['fall']:>6.1%} "
              f"{r['confidence']:>5.2f} {r['start_confidence']:>10.2f} {r['seconds']:>6.2f}")
    print(f"colour error fall: median {report['median_fall']:.1%}, mean {report['mean_fall']:.1%}; classifier "
          f"confidence on the best candidate: mean {report['mean_confidence']:.2f}, min "
          f"{report['min_confidence']:.2f} (start images: {report['mean_start_confidence']:.2f}); "
          f"{report['median_seconds']:.2f} s per edit (median)")


if __name__ == "__main__":
    main()
