"""Getting files into the cache: cache → system folder → mirror → canonical source.

Every file is hashed after every copy or download (and before its first use from the cache),
written under a temporary name and renamed, under one lock per dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .. import config
from .archives import safe_extract
from .errors import ChecksumError, DatasetError, DatasetNotAvailableError, DownloadError, MalformedDataError
from .registry import Dataset, FileSpec, get_dataset

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


# --------------------------------------------------------------------------- fetching


def _offline() -> bool:
    return os.environ.get("DL_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _mirror() -> str | None:
    return os.environ.get("DL_DATA_MIRROR") or None


SYSTEM_DATASETS_DIR = "/usr/share/datasets"


def system_datasets_dir() -> Path:
    """Where system packages put datasets: ``DL_SYSTEM_DATASETS`` or ``/usr/share/datasets``.

    Relative ``Dataset.local_dirs`` are resolved here, so a test (or a user whose packages
    live elsewhere) can point it at another folder, e.g. an empty one to ignore them.
    """
    return Path(os.environ.get("DL_SYSTEM_DATASETS") or SYSTEM_DATASETS_DIR).expanduser()


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
    ways = [
        "set DL_DATA_MIRROR to a folder or http(s) URL laid out <dataset>/<file> "
        "(e.g. export DL_DATA_MIRROR=$(realpath ../shared/data));",
        f"copy the files into {config.data_dir() / ds.name}/ yourself "
        "(they are checked against the registry's hashes).",
    ]
    if ds.canonical:
        ways.insert(0, "connect to the internet and unset DL_OFFLINE (the files are downloaded and checked);")
        intro = "Provide it in one of three ways:\n"
    else:
        intro = "It is not a canonical dataset and has no download (only mirrors carry it). Provide it in one of two ways:\n"
    return DatasetNotAvailableError(
        f"Dataset {ds.name!r} is not available: {len(missing)} file(s) missing:\n{names}\n"
        f"Sources tried:\n{tried_txt}\n" + intro
        + "\n".join(f"  {i}. {w}" for i, w in enumerate(ways, 1))
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
        for local in (system_datasets_dir() / d for d in ds.local_dirs):  # absolute d stays as is
            for spec in list(missing):
                src = local / spec.source_name
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
