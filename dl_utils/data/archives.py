"""Safe extraction of zip and tar archives (nothing may land outside the target folder)."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from .errors import MalformedDataError, UnsafeArchiveError

# tarfile's extraction filters arrived in Python 3.11.4 (and 3.10.12, 3.12); Debian 12's python3.11 is 3.11.2.
HAS_TAR_FILTERS = hasattr(tarfile, "data_filter")


def _tar_member_problem(ti: tarfile.TarInfo, root: Path) -> str | None:
    """Why a tar member may not be extracted into ``root`` (None: it is safe).

    With the standard library's ``data`` filter when it exists; otherwise the same rules by hand:
    no absolute paths, no ``..``, nothing resolving outside ``root``, no links that point out of
    it, no device files or FIFOs.
    """
    name = ti.name
    if name.startswith(("/", "\\")) or ".." in Path(name).parts:  # refused, where the stdlib would only strip "/"
        return "absolute path or '..' in its name"
    if HAS_TAR_FILTERS:
        try:
            tarfile.data_filter(ti, str(root))
        except tarfile.FilterError as exc:
            return str(exc)
        return None
    target = (root / name).resolve()
    if not target.is_relative_to(root):
        return "it would be written outside the target folder"
    if ti.issym() or ti.islnk():
        link = Path(ti.linkname)
        base = target.parent if ti.issym() else root
        if link.is_absolute() or not (base / link).resolve().is_relative_to(root):
            return "a link pointing outside the target folder"
    if ti.ischr() or ti.isblk() or ti.isfifo() or ti.isdev():
        return "a device file or FIFO"
    return None


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
                    problem = _tar_member_problem(ti, root)
                    if problem:
                        raise UnsafeArchiveError(
                            f"{archive.name}: member {ti.name!r} is unsafe ({problem}). The archive was "
                            "not extracted; it is malformed or malicious. Fix: delete it and download "
                            "it again from the canonical source."
                        )
                chosen = [t for t in tinfos if wanted is None or t.name in wanted]
                if HAS_TAR_FILTERS:
                    tf.extractall(root, members=chosen, filter="data")
                else:  # Python < 3.11.4: every member was checked above by hand
                    tf.extractall(root, members=chosen)
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


def extract_once(root: Path, archive: Path, marker: str) -> Path:
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
