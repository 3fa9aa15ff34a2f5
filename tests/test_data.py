"""The data layer against a real HTTP server on 127.0.0.1 and real temporary files."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _helpers import cifar_batch

from dl_utils import config, data
from dl_utils.data import Dataset, FileSpec

PAYLOAD = b"label,value\n" + b"".join(f"row{i},{i}\n".encode() for i in range(2000))


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def make_dataset(name: str, url: str | None, payload: bytes = PAYLOAD, filename: str = "table.csv") -> Dataset:
    return Dataset(name=name, files=(FileSpec(filename, sha256(payload), url),),
                   description="test data", licence="test", citation="test")


def leftovers(folder: Path) -> list[str]:
    """Files in a cache folder other than the lock: partial or corrupt files would show here."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.name != ".lock")


# --------------------------------------------------------------------------- downloads


def test_good_download_then_cache_without_network(server, cache):
    (server.root / "table.csv").write_bytes(PAYLOAD)
    ds = make_dataset("good", f"{server.url}/table.csv")
    folder = data.fetch(ds)
    assert (folder / "table.csv").read_bytes() == PAYLOAD
    assert leftovers(folder) == ["table.csv"]
    server.stop()  # the second fetch must come from the verified cache alone
    assert data.fetch(ds) == folder
    assert len(server.requests) == 1


def test_corrupt_download_is_removed_and_named(server, cache):
    (server.root / "table.csv").write_bytes(PAYLOAD.replace(b"row1,", b"rowX,"))
    ds = make_dataset("corrupt", f"{server.url}/table.csv")
    with pytest.raises(data.ChecksumError) as err:
        data.fetch(ds)
    msg = str(err.value)
    assert "corrupt/table.csv" in msg and sha256(PAYLOAD) in msg
    assert sha256(PAYLOAD.replace(b"row1,", b"rowX,")) in msg
    assert "Fix" in msg
    assert leftovers(cache / "corrupt") == []


def test_truncated_download_leaves_nothing(server, cache):
    (server.root / "table.csv").write_bytes(PAYLOAD)
    server.truncate("table.csv")
    ds = make_dataset("truncated", f"{server.url}/table.csv")
    with pytest.raises(data.DatasetError):
        data.fetch(ds)
    assert leftovers(cache / "truncated") == []


def test_http_404_is_a_clear_error(server, cache):
    ds = make_dataset("missing", f"{server.url}/nope.csv")
    with pytest.raises(data.DownloadError) as err:
        data.fetch(ds)
    assert "404" in str(err.value) and "nope.csv" in str(err.value)
    assert "DL_DATA_MIRROR" in str(err.value)
    assert leftovers(cache / "missing") == []


def test_offline_with_nothing_cached_fails_fast_and_says_how_to_fix(cache, monkeypatch):
    monkeypatch.setenv("DL_OFFLINE", "1")
    # a canonical URL that would hang for a long time if it were tried
    ds = make_dataset("offline", "http://10.255.255.1/table.csv")
    start = time.time()
    with pytest.raises(data.DatasetNotAvailableError) as err:
        data.fetch(ds)
    assert time.time() - start < 2
    msg = str(err.value)
    assert "offline/table.csv" in msg
    for way in ("internet", "DL_DATA_MIRROR", str(cache / "offline")):
        assert way in msg


def test_mirror_directory_is_used_before_the_canonical_source(tmp_path, cache, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "mirrored").mkdir(parents=True)
    (mirror / "mirrored" / "table.csv").write_bytes(PAYLOAD)
    monkeypatch.setenv("DL_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("DL_OFFLINE", "1")
    folder = data.fetch(make_dataset("mirrored", "http://10.255.255.1/table.csv"))
    assert (folder / "table.csv").read_bytes() == PAYLOAD


def test_mirror_url(server, cache, monkeypatch):
    (server.root / "viaurl").mkdir()
    (server.root / "viaurl" / "table.csv").write_bytes(PAYLOAD)
    monkeypatch.setenv("DL_DATA_MIRROR", server.url + "/")
    monkeypatch.setenv("DL_OFFLINE", "1")
    folder = data.fetch(make_dataset("viaurl", None))
    assert (folder / "table.csv").read_bytes() == PAYLOAD
    assert server.requests == ["/viaurl/table.csv"]


def test_corrupt_mirror_copy_is_rejected(tmp_path, cache, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "badmirror").mkdir(parents=True)
    (mirror / "badmirror" / "table.csv").write_bytes(PAYLOAD[:-10])
    monkeypatch.setenv("DL_DATA_MIRROR", str(mirror))
    with pytest.raises(data.ChecksumError) as err:
        data.fetch(make_dataset("badmirror", None))
    assert "mirror" in str(err.value)
    assert leftovers(cache / "badmirror") == []


def test_corrupt_cache_file_is_detected_and_removed(server, cache):
    (server.root / "table.csv").write_bytes(PAYLOAD)
    ds = make_dataset("cached", f"{server.url}/table.csv")
    path = data.fetch(ds) / "table.csv"
    path.write_bytes(b"garbage")
    with pytest.raises(data.ChecksumError):
        data.fetch(ds)
    assert not path.exists()
    assert (data.fetch(ds) / "table.csv").read_bytes() == PAYLOAD  # re-fetched on the next call


def test_gzip_source_is_decompressed_and_hashed_on_content(tmp_path, cache):
    local = tmp_path / "system"
    local.mkdir()
    (local / "table.csv.gz").write_bytes(gzip.compress(PAYLOAD))
    ds = Dataset("gz", (FileSpec("table.csv", sha256(PAYLOAD), None, gunzip=True),), "t", "t", "t",
                 local_dirs=(str(local),))
    assert (data.fetch(ds) / "table.csv").read_bytes() == PAYLOAD


def test_two_processes_fetching_at_once_both_succeed(server, cache, tmp_path):
    (server.root / "table.csv").write_bytes(PAYLOAD)
    server.slow(0.5)
    script = tmp_path / "fetch_one.py"
    script.write_text(textwrap.dedent(f"""
        import hashlib
        from dl_utils import data
        payload_hash = {sha256(PAYLOAD)!r}
        ds = data.Dataset("concurrent", (data.FileSpec("table.csv", payload_hash, "{server.url}/table.csv"),),
                          "t", "t", "t")
        path = data.fetch(ds) / "table.csv"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == payload_hash
        print("ok")
    """))
    env = {**os.environ, "DL_DATA_DIR": str(cache)}
    procs = [subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    assert leftovers(cache / "concurrent") == ["table.csv"]
    assert len(server.requests) == 1  # the second process found the first one's verified file


# --------------------------------------------------------------------------- archives


def _tar_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


@pytest.mark.parametrize("maker,suffix", [(_tar_with, ".tar.gz"), (_zip_with, ".zip")])
def test_archive_members_escaping_the_folder_are_refused(tmp_path, maker, suffix):
    archive = tmp_path / f"evil{suffix}"
    archive.write_bytes(maker({"ok.txt": b"fine", "../escaped.txt": b"evil"}))
    dest = tmp_path / "out"
    with pytest.raises(data.UnsafeArchiveError) as err:
        data.safe_extract(archive, dest)
    assert "../escaped.txt" in str(err.value)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (dest / "ok.txt").exists()  # checked before anything is written


def _tar_links(kind: str) -> bytes:
    """A tar archive with one link member pointing out of the folder (symlink, hardlink) or a FIFO."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        ok = tarfile.TarInfo("ok.txt")
        ok.size = 4
        tf.addfile(ok, io.BytesIO(b"fine"))
        ti = tarfile.TarInfo("bad")
        if kind == "symlink":
            ti.type, ti.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        elif kind == "hardlink":
            ti.type, ti.linkname = tarfile.LNKTYPE, "/etc/passwd"
        else:
            ti.type = tarfile.FIFOTYPE
        tf.addfile(ti)
    return buf.getvalue()


@pytest.mark.parametrize("stdlib_filters", [True, False], ids=["stdlib-filter", "hand-checked"])
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "fifo"])
def test_unsafe_tar_members_are_refused_with_or_without_stdlib_filters(tmp_path, monkeypatch, kind, stdlib_filters):
    """Python < 3.11.4 (Debian 12's 3.11.2) has no tarfile filters: the hand-written checks must hold."""
    from dl_utils.data import archives

    if stdlib_filters and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile extraction filters")
    monkeypatch.setattr(archives, "HAS_TAR_FILTERS", stdlib_filters)
    archive = tmp_path / "evil.tar.gz"
    if kind == "dotdot":
        archive.write_bytes(_tar_with({"ok.txt": b"fine", "../escaped.txt": b"evil"}))
    elif kind == "absolute":
        archive.write_bytes(_tar_with({"ok.txt": b"fine", "/tmp/escaped.txt": b"evil"}))
    else:
        archive.write_bytes(_tar_links(kind))
    dest = tmp_path / "out"
    with pytest.raises(data.UnsafeArchiveError):
        data.safe_extract(archive, dest)
    assert not (dest / "ok.txt").exists()  # checked before anything is written


@pytest.mark.parametrize("stdlib_filters", [True, False], ids=["stdlib-filter", "hand-checked"])
def test_a_safe_tar_extracts_with_or_without_stdlib_filters(tmp_path, monkeypatch, stdlib_filters):
    from dl_utils.data import archives

    if stdlib_filters and not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile extraction filters")
    monkeypatch.setattr(archives, "HAS_TAR_FILTERS", stdlib_filters)
    archive = tmp_path / "fine.tar.gz"
    archive.write_bytes(_tar_with({"d/a.txt": b"alpha", "b.txt": b"beta"}))
    data.safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "b.txt").read_bytes() == b"beta"


def test_truncated_archive_is_malformed(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    archive.write_bytes(_tar_with({"a.txt": b"x" * 5000})[:40])
    with pytest.raises(data.DatasetError):
        data.safe_extract(archive, tmp_path / "out")


def test_zip_members_from_canonical_archive(server, cache):
    members = {"pack/readme": b"hello", "pack/table.csv": PAYLOAD}
    (server.root / "pack.zip").write_bytes(_zip_with(members))
    url = f"{server.url}/pack.zip"
    ds = Dataset("zipped", tuple(FileSpec(Path(n).name, sha256(b), url, member=n) for n, b in members.items()),
                 "t", "t", "t")
    folder = data.fetch(ds)
    assert (folder / "table.csv").read_bytes() == PAYLOAD
    assert (folder / "readme").read_bytes() == b"hello"
    assert server.requests == ["/pack.zip"]  # one download for both members
    assert leftovers(folder) == ["readme", "table.csv"]


def test_unsafe_canonical_archive_leaves_cache_clean(server, cache):
    (server.root / "evil.zip").write_bytes(_zip_with({"table.csv": PAYLOAD, "../../boom": b"x"}))
    ds = Dataset("evilzip", (FileSpec("table.csv", sha256(PAYLOAD), f"{server.url}/evil.zip", member="table.csv"),),
                 "t", "t", "t")
    with pytest.raises(data.UnsafeArchiveError):
        data.fetch(ds)
    assert leftovers(cache / "evilzip") == []
    assert not (cache / "boom").exists()


# --------------------------------------------------------------------------- loaders on files the tests make


def test_load_cifar10_from_a_binary_archive(server, cache, monkeypatch):
    members, expected = {}, {}
    for i, name in enumerate([f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]):
        raw, images, labels = cifar_batch(20, i)
        members[f"cifar-10-batches-bin/{name}"] = raw
        expected[name] = (images, labels)
    members["cifar-10-batches-bin/batches.meta.txt"] = "\n".join(data.CIFAR10_CLASSES).encode()
    archive = _tar_with(members)
    (server.root / "cifar-10-binary.tar.gz").write_bytes(archive)
    ds = Dataset("cifar-10", (FileSpec("cifar-10-binary.tar.gz", "md5:" + hashlib.md5(archive).hexdigest(),
                                       f"{server.url}/cifar-10-binary.tar.gz"),), "t", "t", "t")
    monkeypatch.setitem(data.REGISTRY, "cifar-10", ds)
    (x, y), (xt, yt) = data.load_cifar10()
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.uint8 and y.shape == (100,)
    np.testing.assert_array_equal(x[:20], expected["data_batch_1.bin"][0])
    np.testing.assert_array_equal(yt, expected["test_batch.bin"][1])
    (xs, ys), _ = data.load_cifar10(subset=10)
    assert len(xs) <= 10


def test_cifar_batch_of_wrong_length_is_malformed(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(b"\x00" * 3000)
    with pytest.raises(data.MalformedDataError, match="3,073-byte records"):
        data.read_cifar10_bin(path)


def test_load_hymenoptera_from_an_image_folder_zip(server, cache, monkeypatch):
    from PIL import Image

    members = {}
    for split, label, k in [("train", "ants", 0), ("train", "bees", 1), ("val", "ants", 2), ("val", "bees", 3)]:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (k * 60, 0, 0)).save(buf, format="JPEG")
        members[f"hymenoptera_data/{split}/{label}/{k}.jpg"] = buf.getvalue()
    members["hymenoptera_data/train/ants/imageNotFound.gif"] = b"GIF89a"
    (server.root / "h.zip").write_bytes(_zip_with(members))
    url = f"{server.url}/h.zip"
    ds = Dataset("hymenoptera", tuple(FileSpec(n, sha256(b), url, member=n) for n, b in members.items()),
                 "t", "t", "t")
    monkeypatch.setitem(data.REGISTRY, "hymenoptera", ds)
    df = data.load_hymenoptera()
    assert list(df.columns) == ["path", "split", "label"]
    assert len(df) == 4 and set(df["label"]) == {"ants", "bees"}
    assert Image.open(df["path"].iloc[0]).size == (8, 8)


def test_hymenoptera_registry_matches_the_published_checksums():
    ds = data.get_dataset("hymenoptera")
    jpgs = [s for s in ds.files if s.name.endswith((".jpg", ".jpeg"))]
    assert len(jpgs) == 244 + 153 and all(len(s.hash) == 64 for s in ds.files)


# --------------------------------------------------------------------------- malformed content


def test_csv_missing_columns_is_a_clear_error(tmp_path):
    path = tmp_path / "telco.csv"
    path.write_text("customerID,gender\n1,Male\n")
    with pytest.raises(data.MalformedDataError) as err:
        data.read_telco_csv(path)
    assert "missing expected column" in str(err.value) and "Churn" in str(err.value)


@pytest.mark.parametrize("reader,content,message", [
    (data.read_pima_csv, "1,2,3\n4,5,6\n", "expected 9 columns"),
    (data.read_airline_csv, 'Month,Passengers\n"not a month",1\n', "Month"),
    (data.read_sms_spam, "ham\tfine\nspam this line has no tab\n", "line 2"),
], ids=["pima-wrong-width", "airline-bad-months", "sms-line-without-tab"])
def test_malformed_files_get_a_clear_error(tmp_path, reader, content, message):
    path = tmp_path / "malformed"
    path.write_text(content)
    with pytest.raises(data.MalformedDataError, match=message):
        reader(path)


def test_truncated_idx_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    header = bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    path.write_bytes(header + b"\x00" * 100)
    with pytest.raises(data.MalformedDataError, match="truncated"):
        data.read_idx(path)


def _idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: 0, 0, 0x08, ndim, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("shape", [(7, 28, 28), (7,)], ids=["images", "labels"])
def test_read_idx_round_trip(tmp_path, gz, shape):
    array = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
    raw = _idx_bytes(array)
    path = tmp_path / ("x-idx.gz" if gz else "x-idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    out = data.read_idx(path)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)


_GOOD_IDX = _idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))


@pytest.mark.parametrize("raw,message", [
    (b"\x00\x00\x0d\x03" + _GOOD_IDX[4:], "bad magic"),  # 0x0d: float IDX, not unsigned bytes
    (b"PK\x03\x04" + _GOOD_IDX[4:], "bad magic"),  # a zip, not an IDX file
    (b"\x00\x00", "bad magic"),  # shorter than any header
    (_GOOD_IDX[:-1], "truncated"),  # one data byte missing
    (_GOOD_IDX[:10], "truncated"),  # cut inside the dimensions
    (_GOOD_IDX + b"\x00", "damaged"),  # trailing garbage
], ids=["float-magic", "zip-magic", "two-bytes", "data-cut", "header-cut", "extra-byte"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_read_idx_malformed_is_a_clear_error(tmp_path, gz, raw, message):
    path = tmp_path / ("bad-idx3-ubyte.gz" if gz else "bad-idx3-ubyte")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(data.MalformedDataError, match=message) as err:
        data.read_idx(path)
    assert path.name in str(err.value)


def test_read_idx_cut_gzip_stream_is_a_clear_error(tmp_path):
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_GOOD_IDX)[:-12])  # loses the gzip trailer: a cut-off download
    with pytest.raises(data.MalformedDataError, match="truncated") as err:
        data.read_idx(path)
    assert path.name in str(err.value)


def test_unknown_dataset_name():
    with pytest.raises(data.DatasetError, match="Known:"):
        data.fetch("no-such-dataset")


# --------------------------------------------------------------------------- subsets, CLI, import cost


def test_stratified_head_is_balanced_and_deterministic():
    y = np.array([0, 1, 1, 2, 0, 2, 1, 0, 2, 2])
    idx = data.stratified_head(y, 6)
    assert list(idx) == [0, 1, 2, 3, 4, 5]
    assert np.bincount(y[idx]).tolist() == [2, 2, 2]
    assert len(data.stratified_head(y, None)) == len(y)
    with pytest.raises(ValueError):
        data.stratified_head(y, 0)


def test_cli_list_and_fetch(server, cache, capsys):
    assert data.main(["list"]) == 0
    assert "mnist" in capsys.readouterr().out
    assert data.main(["fetch", "no-such-dataset"]) == 1


def test_import_is_light():
    code = ("import sys, time; t = time.time(); import dl_utils, dl_utils.data; "
            "print(time.time() - t, 'torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False"]
    assert float(out[0]) < 2.0  # about 0.5 s on an idle laptop; generous for a loaded CI machine


# --------------------------------------------------------------------------- the real datasets (mirror)

def test_real_small_datasets_load_with_documented_shapes(mirror_cache):
    df = data.load_telco_churn()
    assert df.shape == (7043, 21) and df["TotalCharges"].isna().sum() == 11
    assert df["Churn"].value_counts().to_dict() == {"No": 5174, "Yes": 1869}
    sms = data.load_sms_spam()
    assert sms.shape == (5574, 2) and (sms["label"] == "spam").sum() == 747
    pima = data.load_pima_diabetes()
    assert pima.shape == (768, 9) and pima["Outcome"].sum() == 268
    air = data.load_airline_passengers()
    assert len(air) == 144 and air.iloc[0] == 112 and air.iloc[-1] == 432
    text = data.load_tiny_shakespeare()
    assert len(text) == 1_115_394 and len(set(text)) == 65
    (x, y), (xt, yt) = data.load_mnist(subset=100, test_subset=50)
    assert x.shape == (100, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [10] * 10
    assert xt.shape == (50, 28, 28)
    assert config.data_dir() == mirror_cache.resolve()


def _clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any DL_* setting, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DL_")}
    return {**env, **overrides}


def test_fashion_mnist_loads_from_the_mirror_alone(mirror_cache, tmp_path):
    """A fresh machine: no Debian dataset-fashion-mnist, only DL_DATA_MIRROR (gzip bytes differ
    from upstream; the registry hashes the decompressed IDX content, so they verify)."""
    no_system = tmp_path / "empty-system-datasets"
    no_system.mkdir()
    code = textwrap.dedent("""
        import numpy as np
        from dl_utils import data
        (x, y), (xt, yt) = data.load_fashion_mnist()
        assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and xt.shape == (10000, 28, 28)
        assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10
        (xs, ys), _ = data.load_fashion_mnist(subset=100, test_subset=50)
        assert np.bincount(ys).tolist() == [10] * 10
        print("ok")
    """)
    env = _clean_env(DL_DATA_MIRROR=os.environ["DL_DATA_MIRROR"], DL_DATA_DIR=str(mirror_cache),
                     DL_SYSTEM_DATASETS=str(no_system), DL_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert leftovers(mirror_cache / "fashion-mnist") == sorted(s.name for s in data.get_dataset("fashion-mnist").files)


def test_system_dataset_folder_is_used_before_the_mirror(mirror_cache, tmp_path, monkeypatch):
    """DL_SYSTEM_DATASETS relocates the Debian folder; its gzip files are used with no mirror at all."""
    system = tmp_path / "system-datasets"
    (system / "fashion-mnist").mkdir(parents=True)
    for spec in data.get_dataset("fashion-mnist").files:
        src = Path(os.environ["DL_DATA_MIRROR"]) / "fashion-mnist" / spec.source_name
        (system / "fashion-mnist" / spec.source_name).symlink_to(src)
    monkeypatch.setenv("DL_SYSTEM_DATASETS", str(system))
    monkeypatch.delenv("DL_DATA_MIRROR")
    (x, y), (xt, yt) = data.load_fashion_mnist(subset=20, test_subset=10)
    assert x.shape == (20, 28, 28) and xt.shape == (10, 28, 28)


def _run_cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dl_utils.data", *args], env=_clean_env(DL_DATA_DIR=str(cache)),
                          capture_output=True, text=True, timeout=120)


def test_cli_verify_good_cache_then_corrupt_file(mirror_cache):
    data.fetch("airline-passengers")
    data.fetch("pima-diabetes")
    good = _run_cli("verify", cache=mirror_cache)
    assert good.returncode == 0, good.stderr
    assert "airline-passengers: 1/1 cached, verified" in good.stdout
    assert "pima-diabetes: 2/2 cached, verified" in good.stdout

    corrupt = mirror_cache / "pima-diabetes" / "pima-indians-diabetes.csv"
    corrupt.write_bytes(corrupt.read_bytes().replace(b"6,148,72", b"7,148,72", 1))
    bad = _run_cli("verify", cache=mirror_cache)
    assert bad.returncode != 0
    assert "pima-diabetes/pima-indians-diabetes.csv" in bad.stderr
    assert "CORRUPT" in bad.stderr and "expected" in bad.stderr
    assert not corrupt.exists()  # removed, so the next fetch replaces it
    assert (mirror_cache / "airline-passengers" / "airline-passengers.csv").is_file()


@pytest.mark.parametrize("ci,outcome", [("true", "error"), ("", "skipped")], ids=["ci", "developer"])
def test_mirror_tests_fail_on_ci_without_a_mirror(ci, outcome, tmp_path):
    """The mirror_cache fixture skips without DL_DATA_MIRROR, except on CI, where it fails (a setup error)."""
    test = f"{Path(__file__).resolve()}::test_real_small_datasets_load_with_documented_shapes"
    env = _clean_env(CI=ci, DL_DATA_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rEs", "-p", "no:cacheprovider", test],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert f"1 {outcome}" in proc.stdout, proc.stdout + proc.stderr
    assert "DL_DATA_MIRROR" in proc.stdout
    assert proc.returncode == (1 if outcome == "error" else 0)
