"""Command line: ``python -m dl_utils.data list | fetch NAME... | fetch --all | verify [NAME...]``."""

from __future__ import annotations

import argparse
import sys

from .. import config
from . import __doc__ as _PKG_DOC
from .errors import ChecksumError, DatasetError
from .registry import REGISTRY, Dataset, get_dataset
from .sources import _VERIFIED, _mirror, _offline, fetch, verify_file


def _status(ds: Dataset) -> str:
    root = config.data_dir() / ds.name
    have = sum((root / s.name).is_file() for s in ds.files)
    return f"{have}/{len(ds.files)} cached"


def main(argv: list[str] | None = None) -> int:
    """``python -m dl_utils.data list | fetch NAME... | fetch --all | verify [NAME...]``."""
    parser = argparse.ArgumentParser(prog="python -m dl_utils.data", description=_PKG_DOC.split("\n")[0])
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

