"""handwriting: the shared contract, the IAM loader, the attention window, sampling bias and the CLI errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import torch

from gencli.errors import UsageError
from gencli.plugin import SampleRequest
from gencli.testing import PluginContract
from gencli_handwriting import Config, SampleOptions, plugin, synthetic
from gencli_handwriting.data import Alphabet, collate
from gencli_handwriting.model import HandwritingNet, point_nll
from gencli_handwriting.sampling import generate
from gencli_handwriting.strokes import load_iam, offsets_to_points, read_iam_strokes, read_style, write_style_json

TINY = {"hidden_size": 16, "num_layers": 2, "mixtures": 3, "window_gaussians": 2}
ALPHABET = synthetic.ALPHABET

HAND_MADE_XML = """<?xml version="1.0" encoding="ISO-8859-1"?>
<WhiteboardCaptureSession>
  <WhiteboardDescription><SensorLocation corner="top_left"/></WhiteboardDescription>
  <StrokeSet>
    <Stroke colour="black" start_time="0.0" end_time="0.2">
      <Point x="100" y="200" time="0.00"/>
      <Point x="103" y="196" time="0.01"/>
      <Point x="107" y="198" time="0.02"/>
    </Stroke>
    <Stroke colour="black" start_time="0.5" end_time="0.6">
      <Point x="120" y="190" time="0.50"/>
      <Point x="121" y="205" time="0.51"/>
    </Stroke>
  </StrokeSet>
</WhiteboardCaptureSession>
"""


def write_iam_folder(root: Path, count: int = 12) -> Path:
    """Synthetic lines stored the IAM way: lineStrokes XML (absolute points) plus a transcription sidecar."""
    root.mkdir(parents=True, exist_ok=True)
    for index, line in enumerate(synthetic.corpus(count, seed=3)):
        points = offsets_to_points(line.offsets.astype(np.float64))
        strokes, current = [], []
        for x, y, pen_up in points:
            current.append(f'<Point x="{x * 10 + 500:.0f}" y="{y * 10 + 900:.0f}" time="0"/>')
            if pen_up > 0.5:
                strokes.append("<Stroke>" + "".join(current) + "</Stroke>")
                current = []
        (root / f"z01-000-{index:02d}.xml").write_text(
            "<WhiteboardCaptureSession><StrokeSet>" + "".join(strokes) + "</StrokeSet></WhiteboardCaptureSession>")
        (root / f"z01-000-{index:02d}.txt").write_text(line.text + "\n")
    return root


@pytest.fixture(scope="session")
def iam_folder(tmp_path_factory) -> Path:
    return write_iam_folder(tmp_path_factory.mktemp("iam"))


class TestHandwritingContract(PluginContract):
    plugin = plugin
    tiny_config = TINY
    tiny_train_options = {"max_points": 60}
    tiny_sample_options = {"text": "ab", "length": 30}

    @pytest.fixture(autouse=True)
    def _data(self, iam_folder, monkeypatch):
        monkeypatch.setattr(type(self), "data", str(iam_folder))


def tiny_model(arch: str = "synthesis", seed: int = 0) -> tuple[HandwritingNet, Config]:
    torch.manual_seed(seed)
    config = Config(arch=arch, alphabet=ALPHABET, offset_scale=3.0, **TINY)
    return HandwritingNet(config).eval(), config


# ---- data -----------------------------------------------------------------------------------------------


def test_iam_loader_reads_a_hand_made_line(tmp_path) -> None:
    form = tmp_path / "lineStrokes" / "a01" / "a01-000"
    form.mkdir(parents=True)
    (form / "a01-000u-02.xml").write_text(HAND_MADE_XML, encoding="iso-8859-1")
    ascii_dir = tmp_path / "ascii" / "a01" / "a01-000"
    ascii_dir.mkdir(parents=True)
    (ascii_dir / "a01-000u.txt").write_text("OCR:\n\nA MOVE to stop\n\nCSR:\n\nA MOVE to stop\nMr. Gaitskell\n")
    offsets = read_iam_strokes(form / "a01-000u-02.xml")
    np.testing.assert_allclose(offsets, [[0, 0, 0], [3, -4, 0], [4, 2, 1], [13, -8, 0], [1, 15, 1]])
    [line] = load_iam(tmp_path)
    assert line.text == "Mr. Gaitskell"  # the second line of the CSR section
    np.testing.assert_allclose(line.offsets, offsets)


def test_iam_folder_without_transcriptions_is_refused(tmp_path) -> None:
    (tmp_path / "x.xml").write_text(HAND_MADE_XML)
    with pytest.raises(UsageError, match="no lineStrokes XML file with a transcription"):
        load_iam(tmp_path)


def test_synthetic_corpus_is_seeded_and_in_the_alphabet() -> None:
    first, again, other = synthetic.corpus(4, seed=1), synthetic.corpus(4, seed=1), synthetic.corpus(4, seed=2)
    assert all(a.text == b.text and np.array_equal(a.offsets, b.offsets) for a, b in zip(first, again))
    assert [line.text for line in first] != [line.text for line in other]
    assert not Alphabet(ALPHABET).unknown("".join(line.text for line in first))
    assert all(line.offsets[-1, 2] == 1.0 and line.offsets.shape[1] == 3 for line in first)


def test_style_files_json_and_csv(tmp_path) -> None:
    line = synthetic.corpus(1, seed=5)[0]
    write_style_json(line, tmp_path / "style.json")
    loaded = read_style(tmp_path / "style.json", "")
    assert loaded.text == line.text and np.allclose(loaded.offsets, line.offsets, atol=1e-3)
    (tmp_path / "style.csv").write_text("dx,dy,pen_up\n1,2,0\n3,4,1\n")
    assert read_style(tmp_path / "style.csv", "ab").offsets.tolist() == [[1, 2, 0], [3, 4, 1]]
    (tmp_path / "bad.csv").write_text("1,2\n")
    with pytest.raises(UsageError, match="--style"):
        read_style(tmp_path / "bad.csv", "ab")


# ---- model ----------------------------------------------------------------------------------------------


def test_point_nll_matches_a_bivariate_normal_and_a_bernoulli() -> None:
    y_hat = torch.tensor([[[0.3, 0.0, 0.5, -1.0, 0.2, -0.4, 0.6]]])  # one component: pen, pi, mu, log sigma, rho
    target = torch.tensor([[[0.9, -0.3, 1.0]]])
    rho = math.tanh(0.6)
    sx, sy = math.exp(0.2), math.exp(-0.4)
    covariance = torch.tensor([[sx * sx, rho * sx * sy], [rho * sx * sy, sy * sy]])
    normal = torch.distributions.MultivariateNormal(torch.tensor([0.5, -1.0]), covariance)
    expected = -normal.log_prob(torch.tensor([0.9, -0.3])) - math.log(torch.sigmoid(torch.tensor(0.3)))
    assert float(point_nll(y_hat, target, 1)) == pytest.approx(float(expected), abs=1e-5)


@pytest.mark.parametrize("arch", ["synthesis", "prediction"])
def test_stepping_one_point_at_a_time_equals_one_pass(arch) -> None:
    """Sampling feeds one point at a time with the carried state (window included): it must match a full pass."""
    model, _ = tiny_model(arch)
    points = torch.randn(2, 9, 3)
    _, _, chars, char_mask = collate([np.zeros((1, 3), np.float32)] * 2, [Alphabet(ALPHABET).encode(t)
                                                                           for t in ("abc", "hello")])
    with torch.no_grad():
        full, _, _ = model(points, chars, char_mask)
        state, steps = None, []
        for t in range(points.shape[1]):
            y_hat, state, _ = model(points[:, t : t + 1], chars, char_mask, state)
            steps.append(y_hat)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)


def test_attention_phase_moves_forward_on_a_sampled_line() -> None:
    model, config = tiny_model()
    with torch.inference_mode():
        written = generate(model, config, ["hello world"], bias=0.0, temperature=1.0, max_points=200,
                           generator=torch.Generator().manual_seed(0))
    kappa = written.kappa[0].mean(axis=1)  # (T,): the window's mean location per written point
    assert len(kappa) > 10 and np.all(np.diff(kappa) > 0)


def variance_of_offsets(bias: float) -> float:
    model, config = tiny_model(seed=3)
    with torch.inference_mode():
        written = generate(model, config, ["hello world"] * 8, bias=bias, temperature=1.0, max_points=60,
                           generator=torch.Generator().manual_seed(11))
    moves = np.concatenate([line[:, :2] for line in written.lines])
    return float(moves.var(axis=0).sum())


def test_bias_gives_steadier_strokes() -> None:
    """Graves' bias shrinks every sigma by exp(-b) and sharpens the mixture: offsets vary much less."""
    assert variance_of_offsets(2.0) < 0.5 * variance_of_offsets(0.0)


def test_refused_characters_are_named() -> None:
    model, config = tiny_model()
    with pytest.raises(UsageError, match=r"not in the model's alphabet: '!' 'H'"):
        plugin.sample(model, config, SampleOptions(text="Hi!"), SampleRequest(1, 0, torch.device("cpu")))


def test_several_lines_and_priming(tmp_path) -> None:
    model, config = tiny_model()
    line = synthetic.corpus(1, seed=5)[0]
    write_style_json(line, tmp_path / "style.json")
    options = SampleOptions(text="ab\\ncd", length=25, style=tmp_path / "style.json")
    with torch.inference_mode():
        output = plugin.sample(model, config, options, SampleRequest(2, 0, torch.device("cpu")))
    assert len(output.lines) == 4  # two text lines, twice
    assert all(line.ndim == 2 and line.shape[1] == 3 and line[-1, 2] == 1 for line in output.lines)


# ---- the command line -----------------------------------------------------------------------------------


def run_gencli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENCLI_", "HF_"))}
    env.update({"NO_COLOR": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    return subprocess.run([sys.executable, "-m", "gencli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_refuses_an_unknown_character_in_one_line(tmp_path) -> None:
    from gencli import weights

    model, config = tiny_model()
    weights.save_model(tmp_path / "run", plugin, model, config)
    process = run_gencli("sample", "handwriting", "--weights", str(tmp_path / "run"), "--text", "Hello",
                         "-o", str(tmp_path / "x.svg"))
    assert process.returncode == 2
    assert process.stderr.strip().count("\n") == 0 and "'H'" in process.stderr, process.stderr
    assert not (tmp_path / "x.svg").exists()


@pytest.mark.skipif(plugin.bundled_weights is None, reason="no bundled weights")
def test_bundled_model_writes_hello_world_to_the_end(tmp_path) -> None:
    """The acceptance command: a valid SVG, and the window passes every character of the text."""
    process = run_gencli("sample", "handwriting", "--text", "hello world", "--seed", "1", "-o",
                         str(tmp_path / "hello.svg"), "-q")
    assert process.returncode == 0, process.stderr
    svg = ElementTree.parse(tmp_path / "hello.svg").getroot()
    paths = svg.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) >= 2
    provenance = json.loads(svg.find("{http://www.w3.org/2000/svg}metadata").text)
    assert provenance["seed"] == 1 and provenance["options"]["text"] == "hello world"

    from gencli import weights

    loaded = weights.load(plugin, None, None, torch.device("cpu"))
    with torch.inference_mode():
        written = generate(loaded.model.eval(), loaded.config, ["hello world"], bias=0.75, temperature=1.0,
                           max_points=400, generator=torch.Generator().manual_seed(1))
    kappa = written.kappa[0]  # (T, K)
    assert written.finished == [True]  # Graves' end rule fired before the length limit
    assert kappa.mean(axis=1)[0] < 1.0  # the window starts at the first character ...
    assert kappa.max(axis=1)[-1] >= len("hello world") - 1  # ... and its lead Gaussian reaches the last one
