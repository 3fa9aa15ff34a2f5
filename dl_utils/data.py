"""Datasets: a checksummed registry, an offline-proof fetcher and one loader per dataset.

Where a file comes from, in order:

1. the verified cache ``DL_DATA_DIR`` (default ``data/`` in the repository), laid out
   ``<dataset>/<file>``;
2. local copies a system package installed (e.g. Debian's ``dataset-fashion-mnist``);
3. the mirror ``DL_DATA_MIRROR``: a directory or an http(s) base URL laid out
   ``<dataset>/<file as published>``;
4. the canonical source (a URL downloaded with ``pooch``, or a Kaggle dataset through
   ``kagglehub``), unless ``DL_OFFLINE=1``.

Every file is hashed after every copy or download and before its first use from the cache.
Files are written under a temporary name and renamed, one lock per dataset, so a crash or a
second notebook never leaves a partial file at a final path. Loaders never unpickle.

Command line: ``python -m dl_utils.data list | fetch NAME... | fetch --all | verify``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import config

# --------------------------------------------------------------------------- errors


class DatasetError(Exception):
    """Base class of every data-layer error: something is missing, corrupt or malformed."""


class ChecksumError(DatasetError):
    """A file's hash differs from the registry's; the file has been removed."""


class DownloadError(DatasetError):
    """A download failed (HTTP error, refused connection, cut-off transfer)."""


class DatasetNotAvailableError(DatasetError):
    """No source could provide the files (typically: offline and nothing cached)."""


class MalformedDataError(DatasetError):
    """A file has the right name but not the expected content (columns, shape, format)."""


class UnsafeArchiveError(DatasetError):
    """An archive member would be written outside the extraction folder."""


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, as stored in the cache.

    ``hash`` is ``"<sha256 hex>"`` or ``"md5:<hex>"`` (only where the publisher gives nothing
    better). ``url`` is the canonical download; with ``member`` it is an archive (zip or tar)
    and the file is that member. ``gunzip`` means sources publish ``name + ".gz"`` and the
    cache keeps the decompressed bytes (the hash is of the decompressed content).
    """

    name: str
    hash: str
    url: str | None = None
    member: str | None = None
    gunzip: bool = False
    size: int | None = None

    @property
    def source_name(self) -> str:
        """The file's name at a mirror or system folder (as published)."""
        return self.name + ".gz" if self.gunzip else self.name


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: its files, where they come from, and how to cite it."""

    name: str
    files: tuple[FileSpec, ...]
    description: str
    licence: str
    citation: str
    homepage: str = ""
    kaggle: str | None = None  # Kaggle handle "owner/dataset", fetched with kagglehub
    local_dirs: tuple[str, ...] = field(default_factory=tuple)


def _mnist_like(base: str, hashes: dict[str, str], gz_in_cache: bool) -> tuple[FileSpec, ...]:
    names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ]
    if gz_in_cache:
        return tuple(FileSpec(n + ".gz", hashes[n], base + n + ".gz") for n in names)
    return tuple(FileSpec(n, hashes[n], base + n + ".gz", gunzip=True) for n in names)


_JB = "https://raw.githubusercontent.com/jbrownlee/Datasets/master/"
_PKG_DIR = Path(__file__).resolve().parent


def _hymenoptera_files() -> tuple[FileSpec, ...]:
    url = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
    sums = (_PKG_DIR / "checksums" / "hymenoptera_data.SHA256SUMS").read_text().splitlines()
    files = []
    for line in sums:
        if line.strip():
            digest, name = line.split(maxsplit=1)
            files.append(FileSpec(name.strip(), digest, url, member=name.strip()))
    return tuple(files)


REGISTRY: dict[str, Dataset] = {}


def register(ds: Dataset) -> Dataset:
    """Add a dataset to the registry (the tests register their own on a local server)."""
    REGISTRY[ds.name] = ds
    return ds


register(Dataset(
    name="mnist",
    files=_mnist_like(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {
            "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        gz_in_cache=True,
    ),
    description="MNIST handwritten digits: 60,000 train + 10,000 test 28×28 greyscale images.",
    licence="CC BY-SA 3.0 (as distributed by Yann LeCun and Corinna Cortes)",
    citation="LeCun, Cortes, Burges. The MNIST database of handwritten digits (1998).",
    homepage="http://yann.lecun.com/exdb/mnist/",
))
register(Dataset(
    name="fashion-mnist",
    files=_mnist_like(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {  # sha256 of the decompressed IDX files (gzip bytes differ between distributions)
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        gz_in_cache=False,
    ),
    description="Fashion-MNIST: 60,000 train + 10,000 test 28×28 greyscale clothing images, 10 classes.",
    licence="MIT (Zalando SE)",
    citation="Xiao, Rasul, Vollgraf. Fashion-MNIST: a Novel Image Dataset for Benchmarking "
    "Machine Learning Algorithms. arXiv:1708.07747 (2017).",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    local_dirs=("/usr/share/datasets/fashion-mnist",),
))
register(Dataset(
    name="telco-churn",
    files=(FileSpec(
        "WA_Fn-UseC_-Telco-Customer-Churn.csv",
        "88be4b93fbe0cc83421af1c503794c97c342eca914c1576db7c276e61d61358a",
    ),),
    description="IBM Telco Customer Churn: 7,043 customers × 21 columns, target 'Churn'.",
    licence="IBM sample data set, redistributed on Kaggle (see the Kaggle page for terms)",
    citation="IBM Cognos Analytics sample data: Telco Customer Churn; Kaggle blastchar/telco-customer-churn.",
    homepage="https://www.kaggle.com/datasets/blastchar/telco-customer-churn",
    kaggle="blastchar/telco-customer-churn",
))
register(Dataset(
    name="sms-spam",
    files=tuple(
        FileSpec(n, h, "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip", member=n)
        for n, h in [
            ("SMSSpamCollection", "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d"),
            ("readme", "8753cd2d3cab68f80c8257851b8c2037778c267f55accb6fd1b5a2e32d36a84e"),
        ]
    ),
    description="SMS Spam Collection v.1: 5,574 SMS messages labelled ham/spam (13.4% spam).",
    licence="CC BY 4.0 (UCI Machine Learning Repository)",
    citation="Almeida, Gómez Hidalgo, Yamakami. Contributions to the Study of SMS Spam Filtering. "
    "DocEng 2011.",
    homepage="https://archive.ics.uci.edu/dataset/228/sms+spam+collection",
))
register(Dataset(
    name="pima-diabetes",
    files=(
        FileSpec("pima-indians-diabetes.csv",
                 "6bfe5d0f379d17a0e0819b996407e3c09bf80febd4287f2ed212190dfff154af",
                 _JB + "pima-indians-diabetes.csv"),
        FileSpec("pima-indians-diabetes.names",
                 "60d1939616d51c185add571f935309973eed52eb33a31764aaeeef18745374c5",
                 _JB + "pima-indians-diabetes.names"),
    ),
    description="Pima Indians Diabetes: 768 women × 8 clinical features + 0/1 outcome.",
    licence="Public domain / CC0 (National Institute of Diabetes and Digestive and Kidney Diseases)",
    citation="Smith et al. Using the ADAP learning algorithm to forecast the onset of diabetes "
    "mellitus. Proc. Symp. Computer Applications in Medical Care, 1988.",
    homepage="https://www.kaggle.com/datasets/uciml/pima-indians-diabetes-database",
))
register(Dataset(
    name="airline-passengers",
    files=(FileSpec("airline-passengers.csv",
                    "8cb51be753a718d9be5d76d7e238cc224792754676adc21faa59e954b0201621",
                    _JB + "airline-passengers.csv"),),
    description="Monthly international airline passengers (thousands), 1949-01 to 1960-12: 144 values.",
    licence="Public domain (Box & Jenkins series)",
    citation="Box, Jenkins, Reinsel. Time Series Analysis: Forecasting and Control (1976), series G.",
))
register(Dataset(
    name="tiny-shakespeare",
    files=(FileSpec("input.txt",
                    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"),),
    description="Tiny Shakespeare: 1,115,394 characters of Shakespeare's plays, 65 distinct symbols.",
    licence="Public domain text; compilation by Andrej Karpathy (char-rnn, MIT)",
    citation="Karpathy. The Unreasonable Effectiveness of Recurrent Neural Networks (2015), char-rnn.",
))
register(Dataset(
    name="cifar-10",
    files=(FileSpec("cifar-10-binary.tar.gz", "md5:c32a1d4ab5d03f1284b67883e8d87530",
                    "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", size=170_052_171),),
    description="CIFAR-10 (binary version): 50,000 train + 10,000 test 32×32 colour images, 10 classes.",
    licence="Free to use with citation (Alex Krizhevsky)",
    citation="Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Tech. report, 2009.",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
))
register(Dataset(
    name="hymenoptera",
    files=_hymenoptera_files(),
    description="Ants vs bees (PyTorch transfer-learning tutorial): 244 train + 153 val JPEGs.",
    licence="Images from ImageNet; for non-commercial research/education",
    citation="PyTorch transfer-learning tutorial data (subset of ImageNet).",
    homepage="https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html",
))


def get_dataset(name: str | Dataset) -> Dataset:
    """Look a dataset up by name (or pass a :class:`Dataset` through)."""
    if isinstance(name, Dataset):
        return name
    try:
        return REGISTRY[name]
    except KeyError:
        raise DatasetError(
            f"Unknown dataset {name!r}. Known: {', '.join(sorted(REGISTRY))}."
        ) from None


# --------------------------------------------------------------------------- hashing


_VERIFIED: dict[tuple[str, int, int], str] = {}


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _split_hash(spec: str) -> tuple[str, str]:
    if ":" in spec:
        alg, digest = spec.split(":", 1)
        return alg.lower(), digest.lower()
    return "sha256", spec.lower()


def verify_file(path: Path, spec: FileSpec, dataset: str, origin: str) -> None:
    """Check ``path`` against the registry hash; on mismatch delete it and raise ChecksumError."""
    alg, expected = _split_hash(spec.hash)
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if _VERIFIED.get(key) == spec.hash:
        return
    actual = file_hash(path, alg)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise ChecksumError(
            f"{dataset}/{spec.name}: {alg} mismatch for the copy from {origin}.\n"
            f"  expected {expected}\n  actual   {actual}\n"
            "The file was removed, so nothing corrupt stays in the cache. It is probably a partial "
            "or damaged download, or a different version of the file. Fix: run again to re-fetch; "
            "if the mirror or a local copy is the source, replace that copy with the original "
            "(python -m dl_utils.data verify checks the cache)."
        )
    _VERIFIED[key] = spec.hash


# --------------------------------------------------------------------------- archives


def safe_extract(archive: Path, dest: Path, members: Iterable[str] | None = None) -> None:
    """Extract a zip or tar archive into ``dest``, refusing members that would escape it.

    Tar archives use the standard library's ``filter="data"`` (no absolute paths, no ``..``,
    no links out, no device files); zip members are checked the same way by hand. The
    whole archive is checked before anything is written.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    wanted = set(members) if members is not None else None
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    target = (root / info.filename).resolve()
                    if (info.filename.startswith(("/", "\\")) or ".." in Path(info.filename).parts
                            or not target.is_relative_to(root)):
                        raise UnsafeArchiveError(
                            f"{archive.name}: member {info.filename!r} would be written outside "
                            f"{dest}. The archive was not extracted; it is malformed or malicious. "
                            "Fix: delete it and download it again from the canonical source."
                        )
                for info in infos:
                    if wanted is None or info.filename in wanted:
                        zf.extract(info, root)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                tinfos = tf.getmembers()
                for ti in tinfos:
                    try:
                        tarfile.data_filter(ti, str(root))
                    except tarfile.FilterError as exc:
                        raise UnsafeArchiveError(
                            f"{archive.name}: member {ti.name!r} is unsafe ({exc}). The archive was "
                            "not extracted; it is malformed or malicious. Fix: delete it and download "
                            "it again from the canonical source."
                        ) from None
                chosen = [t for t in tinfos if wanted is None or t.name in wanted]
                tf.extractall(root, members=chosen, filter="data")
        else:
            raise MalformedDataError(
                f"{archive.name} is neither a zip nor a tar archive (truncated download?). "
                "Fix: delete it and fetch it again."
            )
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise MalformedDataError(
            f"{archive.name} could not be read as an archive ({exc}); it is probably truncated. "
            "Fix: delete it and fetch it again."
        ) from exc


# --------------------------------------------------------------------------- fetching


def _offline() -> bool:
    return os.environ.get("DL_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _mirror() -> str | None:
    return os.environ.get("DL_DATA_MIRROR") or None


def _download(url: str, out: Path) -> None:
    """Download ``url`` to ``out`` with pooch's HTTP downloader (tqdm bar, timeouts)."""
    import pooch
    import requests

    downloader = pooch.HTTPDownloader(progressbar=sys.stderr.isatty() or "ipykernel" in sys.modules,
                                      timeout=(10, 120))
    try:
        downloader(url, str(out), None)
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        raise DownloadError(f"HTTP {code} for {url}") from exc
    except requests.RequestException as exc:
        raise DownloadError(f"could not download {url}: {type(exc).__name__}: {exc}") from exc


def _install(tmp: Path, final: Path, spec: FileSpec, dataset: str, origin: str,
             decompress: bool) -> Path:
    """Verify a fetched temporary file and rename it to its final cache path."""
    if decompress:
        plain = tmp.with_name(tmp.name + ".raw")
        try:
            with gzip.open(tmp, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError) as exc:
            plain.unlink(missing_ok=True)
            raise ChecksumError(
                f"{dataset}/{spec.source_name} from {origin} is not a valid gzip file ({exc}); "
                "it is probably truncated. Nothing was written to the cache. Fix: fetch it again "
                "or replace that copy."
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        tmp = plain
    verify_file(tmp, spec, dataset, origin)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    _VERIFIED[(str(final), final.stat().st_size, final.stat().st_mtime_ns)] = spec.hash
    return final


def _tmp_path(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    return Path(name)


def _from_file(src: Path, final: Path, spec: FileSpec, ds: Dataset, origin: str) -> Path:
    tmp = _tmp_path(final)
    try:
        shutil.copyfile(src, tmp)
        return _install(tmp, final, spec, ds.name, origin, spec.gunzip)
    finally:
        tmp.unlink(missing_ok=True)


def _from_url(url: str, final: Path, spec: FileSpec, ds: Dataset) -> Path:
    tmp = _tmp_path(final)
    try:
        _download(url, tmp)
        return _install(tmp, final, spec, ds.name, url, spec.gunzip)
    finally:
        tmp.unlink(missing_ok=True)


def _from_archive(url: str, specs: list[FileSpec], ds: Dataset, root: Path) -> None:
    """Download an archive once, extract it safely and install the members we need."""
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    try:
        archive = work / Path(url.split("?")[0]).name
        _download(url, archive)
        out = work / "x"
        safe_extract(archive, out, members=[s.member for s in specs if s.member])
        for spec in specs:
            src = out / str(spec.member)
            if not src.is_file():
                raise MalformedDataError(
                    f"{archive.name} from {url} has no member {spec.member!r}; the archive layout "
                    "changed or the download is damaged. Fix: report it, or provide the file "
                    "through DL_DATA_MIRROR."
                )
            tmp = _tmp_path(root / spec.name)
            os.replace(src, tmp)
            try:
                _install(tmp, root / spec.name, spec, ds.name, f"{url} (member {spec.member})", False)
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _from_kaggle(ds: Dataset, spec: FileSpec, final: Path) -> Path:
    try:
        import kagglehub
    except ImportError as exc:  # pragma: no cover - kagglehub is a dependency
        raise DownloadError("kagglehub is not installed (pip install kagglehub)") from exc
    try:
        local = Path(kagglehub.dataset_download(str(ds.kaggle), path=spec.name))
    except Exception as exc:  # kagglehub raises many kinds; report them all the same way
        raise DownloadError(f"kagglehub could not download {ds.kaggle}/{spec.name}: {exc}") from exc
    return _from_file(local, final, spec, ds, f"Kaggle {ds.kaggle}")


def _not_available(ds: Dataset, missing: list[FileSpec], tried: list[str]) -> DatasetNotAvailableError:
    names = "\n".join(f"  - {ds.name}/{s.source_name}" for s in missing[:10])
    if len(missing) > 10:
        names += f"\n  - … and {len(missing) - 10} more"
    tried_txt = "\n".join(f"  - {t}" for t in tried) or "  - (nothing)"
    return DatasetNotAvailableError(
        f"Dataset {ds.name!r} is not available: {len(missing)} file(s) missing:\n{names}\n"
        f"Sources tried:\n{tried_txt}\n"
        "Provide it in one of three ways:\n"
        "  1. connect to the internet and unset DL_OFFLINE (the files are downloaded and checked);\n"
        "  2. set DL_DATA_MIRROR to a folder or http(s) URL laid out <dataset>/<file> "
        "(e.g. export DL_DATA_MIRROR=$(realpath ../shared/data));\n"
        f"  3. copy the files into {config.data_dir() / ds.name}/ yourself "
        "(they are checked against the registry's hashes)."
    )


def fetch(name: str | Dataset) -> Path:
    """Make every file of a dataset present and verified in the cache; return its folder."""
    ds = get_dataset(name)
    from filelock import FileLock

    root = config.data_dir() / ds.name
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock"), timeout=1800):
        missing: list[FileSpec] = []
        for spec in ds.files:
            final = root / spec.name
            if final.is_file():
                verify_file(final, spec, ds.name, f"the cache ({final})")
            else:
                missing.append(spec)
        if not missing:
            return root
        tried: list[str] = []
        # 2. local copies installed by system packages
        for local in ds.local_dirs:
            for spec in list(missing):
                src = Path(local) / spec.source_name
                if src.is_file():
                    _from_file(src, root / spec.name, spec, ds, str(src))
                    missing.remove(spec)
            tried.append(f"local folder {local}")
        # 3. the mirror
        mirror = _mirror()
        if mirror and missing:
            if mirror.startswith(("http://", "https://")):
                for spec in list(missing):
                    url = f"{mirror.rstrip('/')}/{ds.name}/{spec.source_name}"
                    try:
                        _from_url(url, root / spec.name, spec, ds)
                        missing.remove(spec)
                    except DownloadError as exc:
                        tried.append(f"mirror {url}: {exc}")
            else:
                base = Path(mirror).expanduser() / ds.name
                for spec in list(missing):
                    src = base / spec.source_name
                    if src.is_file():
                        _from_file(src, root / spec.name, spec, ds, f"the mirror ({src})")
                        missing.remove(spec)
            tried.append(f"DL_DATA_MIRROR={mirror}")
        elif missing:
            tried.append("DL_DATA_MIRROR (not set)")
        # 4. the canonical source
        if missing and _offline():
            tried.append("canonical source (skipped: DL_OFFLINE=1)")
        elif missing:
            errors: list[str] = []
            archives: dict[str, list[FileSpec]] = {}
            for spec in list(missing):
                try:
                    if ds.kaggle:
                        _from_kaggle(ds, spec, root / spec.name)
                    elif spec.url and spec.member:
                        archives.setdefault(spec.url, []).append(spec)
                        continue
                    elif spec.url:
                        _from_url(spec.url, root / spec.name, spec, ds)
                    else:
                        continue
                    missing.remove(spec)
                except DownloadError as exc:
                    errors.append(str(exc))
            for url, specs in archives.items():
                try:
                    _from_archive(url, specs, ds, root)
                    for spec in specs:
                        missing.remove(spec)
                except DownloadError as exc:
                    errors.append(str(exc))
            tried.append("canonical source" + (": " + "; ".join(errors[:3]) if errors else ""))
            if missing and errors:
                err = _not_available(ds, missing, tried)
                raise DownloadError(str(err))
        if missing:
            raise _not_available(ds, missing, tried)
    return root


def fetch_file(name: str | Dataset, filename: str) -> Path:
    """Fetch a dataset and return the path of one of its files."""
    ds = get_dataset(name)
    if filename not in {s.name for s in ds.files}:
        raise DatasetError(f"{ds.name} has no file {filename!r}.")
    return fetch(ds) / filename


# --------------------------------------------------------------------------- subsets


def stratified_head(y: Sequence | np.ndarray, n: int | None) -> np.ndarray:
    """Indices of a deterministic, class-balanced subset: the first ``n // k`` of each class.

    The smoke profile uses this so that a small run still sees every class, and the same
    examples every time. ``n=None`` returns every index.
    """
    y = np.asarray(y)
    if n is None or n >= len(y):
        return np.arange(len(y))
    if n <= 0:
        raise ValueError(f"subset size must be positive, got {n}")
    classes = np.unique(y)
    per = max(1, n // len(classes))
    idx = np.concatenate([np.flatnonzero(y == c)[:per] for c in classes])
    return np.sort(idx)


# --------------------------------------------------------------------------- parsers


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not, into a uint8 array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise MalformedDataError(f"{path.name}: cannot read ({exc}); is it truncated?") from exc
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise MalformedDataError(f"{path.name}: not an unsigned-byte IDX file (bad magic number).")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise MalformedDataError(
            f"{path.name}: header says {dims} = {int(np.prod(dims))} bytes but "
            f"{len(raw) - offset} follow; the file is truncated or damaged."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def _check_columns(df: pd.DataFrame, expected: Sequence[str], path: Path) -> None:
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise MalformedDataError(
            f"{Path(path).name}: missing expected column(s) {missing}; found {list(df.columns)[:25]}. "
            "Is this the right file? Fix: remove it and fetch the dataset again."
        )


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise MalformedDataError(f"{Path(path).name}: not a readable CSV file ({exc}).") from exc


TELCO_COLUMNS = [
    "customerID", "gender", "SeniorCitizen", "Partner", "Dependents", "tenure", "PhoneService",
    "MultipleLines", "InternetService", "OnlineSecurity", "OnlineBackup", "DeviceProtection",
    "TechSupport", "StreamingTV", "StreamingMovies", "Contract", "PaperlessBilling",
    "PaymentMethod", "MonthlyCharges", "TotalCharges", "Churn",
]
PIMA_COLUMNS = [
    "Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI",
    "DiabetesPedigreeFunction", "Age", "Outcome",
]


def read_telco_csv(path: Path) -> pd.DataFrame:
    """Parse the Telco churn CSV; blank ``TotalCharges`` (new customers) become NaN."""
    df = _read_csv(path)
    _check_columns(df, TELCO_COLUMNS, path)
    df["TotalCharges"] = pd.to_numeric(df["TotalCharges"].astype(str).str.strip().replace("", np.nan),
                                       errors="coerce")
    bad = set(df["Churn"].unique()) - {"Yes", "No"}
    if bad:
        raise MalformedDataError(f"{Path(path).name}: unexpected Churn values {sorted(bad)[:5]}.")
    return df


def read_pima_csv(path: Path) -> pd.DataFrame:
    """Parse the header-less Pima CSV into named numeric columns."""
    df = _read_csv(path, header=None)
    if df.shape[1] != len(PIMA_COLUMNS):
        raise MalformedDataError(
            f"{Path(path).name}: expected {len(PIMA_COLUMNS)} columns "
            f"({', '.join(PIMA_COLUMNS)}), found {df.shape[1]}."
        )
    df.columns = PIMA_COLUMNS
    non_numeric = [c for c in PIMA_COLUMNS if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise MalformedDataError(f"{Path(path).name}: non-numeric values in {non_numeric}.")
    return df


def read_airline_csv(path: Path) -> pd.Series:
    """Parse the airline-passengers CSV into a monthly Series (thousands of passengers)."""
    df = _read_csv(path)
    _check_columns(df, ["Month", "Passengers"], path)
    try:
        index = pd.PeriodIndex(df["Month"], freq="M").to_timestamp()
    except (ValueError, TypeError) as exc:
        raise MalformedDataError(f"{Path(path).name}: unreadable Month values ({exc}).") from exc
    return pd.Series(df["Passengers"].to_numpy(dtype=float), index=index, name="passengers")


def read_sms_spam(path: Path) -> pd.DataFrame:
    """Parse ``label<TAB>text`` lines (the text may contain quotes, so no CSV parser)."""
    rows = []
    with open(path, encoding="utf-8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            label, sep, text = line.partition("\t")
            if not sep or label not in {"ham", "spam"}:
                raise MalformedDataError(
                    f"{Path(path).name}, line {lineno}: expected 'ham' or 'spam', a TAB, then the "
                    f"message; got {line[:60]!r}."
                )
            rows.append((label, text))
    return pd.DataFrame(rows, columns=["label", "text"])


# --------------------------------------------------------------------------- loaders

XY = tuple[np.ndarray, np.ndarray]


def _idx_pair(root: Path, prefix: str, gz: bool) -> XY:
    suffix = ".gz" if gz else ""
    x = read_idx(root / f"{prefix}-images-idx3-ubyte{suffix}")
    y = read_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}")
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise MalformedDataError(f"{root}: {prefix} images {x.shape} and labels {y.shape} do not match.")
    return x, y


def _subset(xy: XY, n: int | None) -> XY:
    idx = stratified_head(xy[1], n)
    return xy[0][idx], xy[1][idx]


def load_mnist(subset: int | None = None, test_subset: int | None = None) -> tuple[XY, XY]:
    """MNIST as ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 ``(N, 28, 28)`` in 0..255, labels uint8 ``(N,)``: 60,000 and 10,000
    examples. ``subset``/``test_subset`` keep the first ``n // 10`` of each digit.
    """
    root = fetch("mnist")
    return _subset(_idx_pair(root, "train", True), subset), _subset(_idx_pair(root, "t10k", True), test_subset)


FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load_fashion_mnist(subset: int | None = None, test_subset: int | None = None) -> tuple[XY, XY]:
    """Fashion-MNIST, same shapes as :func:`load_mnist`; names in ``FASHION_MNIST_CLASSES``."""
    root = fetch("fashion-mnist")
    return _subset(_idx_pair(root, "train", False), subset), _subset(_idx_pair(root, "t10k", False), test_subset)


def load_telco_churn(subset: int | None = None) -> pd.DataFrame:
    """Telco churn as a DataFrame of 7,043 rows × 21 columns (``TotalCharges`` float, 11 NaN)."""
    df = read_telco_csv(fetch_file("telco-churn", "WA_Fn-UseC_-Telco-Customer-Churn.csv"))
    return df.iloc[stratified_head(df["Churn"], subset)].reset_index(drop=True)


def load_sms_spam(subset: int | None = None) -> pd.DataFrame:
    """SMS spam as a DataFrame with ``label`` ('ham'/'spam') and ``text``: 5,574 rows."""
    df = read_sms_spam(fetch_file("sms-spam", "SMSSpamCollection"))
    return df.iloc[stratified_head(df["label"], subset)].reset_index(drop=True)


def load_pima_diabetes(subset: int | None = None) -> pd.DataFrame:
    """Pima diabetes as a DataFrame of 768 rows: 8 numeric features + ``Outcome`` (0/1).

    Zeros in Glucose, BloodPressure, SkinThickness, Insulin and BMI stand for missing values;
    they are left as they are, so each notebook decides (and shows) how to treat them.
    """
    df = read_pima_csv(fetch_file("pima-diabetes", "pima-indians-diabetes.csv"))
    return df.iloc[stratified_head(df["Outcome"], subset)].reset_index(drop=True)


def load_airline_passengers() -> pd.Series:
    """Monthly airline passengers (thousands), 1949-01..1960-12, as a float Series of 144 values."""
    return read_airline_csv(fetch_file("airline-passengers", "airline-passengers.csv"))


def load_tiny_shakespeare(subset: int | None = None) -> str:
    """Tiny Shakespeare as one string of 1,115,394 characters (the first ``subset`` if given)."""
    text = fetch_file("tiny-shakespeare", "input.txt").read_text(encoding="utf-8")
    return text if subset is None else text[:subset]


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]


def read_cifar10_bin(path: Path) -> XY:
    """Read one CIFAR-10 binary batch: records of 1 label byte + 3,072 pixel bytes (R, G, B planes)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % 3073:
        raise MalformedDataError(
            f"{Path(path).name}: {raw.size} bytes is not a whole number of 3,073-byte records; "
            "the file is truncated or not a CIFAR-10 binary batch."
        )
    rec = raw.reshape(-1, 3073)
    y = rec[:, 0].copy()
    if y.max() > 9:
        raise MalformedDataError(f"{Path(path).name}: label {int(y.max())} is out of range 0..9.")
    x = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return x, y


def _extract_once(root: Path, archive: Path, marker: str) -> Path:
    """Extract ``archive`` into ``root/marker`` once, atomically (temp folder + rename)."""
    from filelock import FileLock

    out = root / marker
    with FileLock(str(root / ".lock"), timeout=1800):
        if not out.is_dir():
            work = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
            try:
                safe_extract(archive, work)
                os.replace(work / marker, out)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return out


def load_cifar10(subset: int | None = None, test_subset: int | None = None) -> tuple[XY, XY]:
    """CIFAR-10 as ``(x_train, y_train), (x_test, y_test)`` from the binary archive.

    Images uint8 ``(N, 32, 32, 3)`` (HWC, RGB), labels uint8 ``(N,)``; names in
    ``CIFAR10_CLASSES``. Reads the binary version, never the pickled one.
    """
    root = fetch("cifar-10")
    folder = _extract_once(root, root / "cifar-10-binary.tar.gz", "cifar-10-batches-bin")
    parts = [read_cifar10_bin(folder / f"data_batch_{i}.bin") for i in range(1, 6)]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = read_cifar10_bin(folder / "test_batch.bin")
    return _subset(train, subset), _subset(test, test_subset)


def load_hymenoptera() -> pd.DataFrame:
    """Ants vs bees image list: a DataFrame with ``path``, ``split`` (train/val) and ``label``.

    Only JPEGs are listed (the archive's stray ``imageNotFound.gif`` is skipped), sorted by
    split, label and file name; open them with PIL or torchvision.
    """
    root = fetch("hymenoptera")
    rows = []
    for spec in get_dataset("hymenoptera").files:
        parts = Path(spec.name).parts  # hymenoptera_data/<split>/<label>/<file>
        if len(parts) == 4 and parts[-1].lower().endswith((".jpg", ".jpeg")):
            rows.append((str(root / spec.name), parts[1], parts[2]))
    return pd.DataFrame(sorted(rows, key=lambda r: (r[1], r[2], r[0])), columns=["path", "split", "label"])


# --------------------------------------------------------------------------- CLI


def _status(ds: Dataset) -> str:
    root = config.data_dir() / ds.name
    have = sum((root / s.name).is_file() for s in ds.files)
    return f"{have}/{len(ds.files)} cached"


def main(argv: list[str] | None = None) -> int:
    """``python -m dl_utils.data list | fetch NAME... | fetch --all | verify [NAME...]``."""
    parser = argparse.ArgumentParser(prog="python -m dl_utils.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list registered datasets and what is cached")
    p_fetch = sub.add_parser("fetch", help="download/copy datasets into the cache")
    p_fetch.add_argument("names", nargs="*")
    p_fetch.add_argument("--all", action="store_true")
    p_verify = sub.add_parser("verify", help="re-hash every cached file")
    p_verify.add_argument("names", nargs="*")
    args = parser.parse_args(argv)

    if args.cmd == "list":
        for ds in REGISTRY.values():
            print(f"{ds.name:20s} {_status(ds):14s} {ds.description}")
        print(f"cache: {config.data_dir()}  mirror: {_mirror() or '-'}  offline: {_offline()}")
        return 0
    if args.cmd == "fetch":
        names = list(REGISTRY) if args.all else args.names
        if not names:
            parser.error("name at least one dataset, or use --all")
        failed = 0
        for name in names:
            try:
                print(f"{name}: {fetch(name)}")
            except DatasetError as exc:
                failed += 1
                print(f"{name}: FAILED\n{exc}", file=sys.stderr)
        return 1 if failed else 0
    bad = 0
    for name in args.names or list(REGISTRY):
        ds = get_dataset(name)
        for spec in ds.files:
            path = config.data_dir() / ds.name / spec.name
            if not path.is_file():
                continue
            _VERIFIED.clear()
            try:
                verify_file(path, spec, ds.name, f"the cache ({path})")
            except ChecksumError as exc:
                bad += 1
                print(f"CORRUPT (removed): {exc}", file=sys.stderr)
        print(f"{name}: {_status(ds)}, verified")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
