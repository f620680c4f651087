"""`gencli sample PLUGIN --input PATH|DIR|-` for a plugin that declares ``image_input``: each input image
decoded in turn, handed to ``plugin.sample`` in ``SampleRequest.input``, and its output written where ``-o``
maps it, with the input's name and sha256 in the provenance. The rules: gencli.plugin.ImageInput."""

from __future__ import annotations

import sys
from typing import Any

from gencli import inputs, writers
from gencli.errors import UsageError
from gencli.plugin import SampleRequest
from gencli.sampling import SampleProgress, load_sampler, provenance_of, run_sample


def run_image_sample(plugin: Any, options: Any, *, input: str | None = None, output: str | None, n: int, seed: int,
                     weights: str | None, revision: str | None, device: str, quiet: bool,
                     threads: int | None = None) -> None:
    declared = plugin.image_input
    if n < 1:
        raise UsageError("-n must be at least 1")
    if input is None:
        if declared.required:
            raise UsageError(f"{plugin.name} works on an image: give --input PHOTO.png, a folder of images, or "
                             "--input - for one on stdin")
        run_sample(plugin, options, output=output, n=n, seed=seed, weights=weights, revision=revision,
                   device=device, quiet=quiet, threads=threads)
        return
    sources, folder = inputs.find_inputs(input, declared)  # every input checked before the model loads
    jobs = inputs.plan(sources, folder, output, plugin=plugin.name, n=n)
    sampler = load_sampler(plugin, options, weights=weights, revision=revision, device=device, threads=threads,
                           quiet=quiet)
    provenance = provenance_of(plugin, sampler.loaded, seed, options)
    written: list[str] = []
    for job in jobs:
        image = inputs.decode(job.source, declared)  # one image in memory at a time
        sampler.reseed(seed)  # each output depends on its input and the seed, not on the inputs before it
        progress = SampleProgress(quiet=quiet, description=f"sample {plugin.name} {image.name}")
        try:
            with sampler.inference():
                result = sampler.generate(SampleRequest(n, seed, sampler.target, progress=progress.update,
                                                        input=image))
            progress.close()
            record = {**provenance, "input": inputs.provenance_of(image)}
            written += writers.write(result, job.destination, record, default_stem=f"{image.stem}-{plugin.name}")
        finally:
            progress.close()
    if not quiet and written != ["-"]:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
