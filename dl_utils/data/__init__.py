"""Datasets: a checksummed registry, an offline-proof fetcher and one loader per dataset.

Where a file comes from, in order:

1. the verified cache ``DL_DATA_DIR`` (default ``data/`` in the repository), laid out
   ``<dataset>/<file>``;
2. local copies a system package installed (e.g. Debian's ``dataset-fashion-mnist`` under
   ``DL_SYSTEM_DATASETS``, default ``/usr/share/datasets``);
3. the mirror ``DL_DATA_MIRROR``: a directory or an http(s) base URL laid out
   ``<dataset>/<file as published>``;
4. the canonical source (a URL downloaded with ``pooch``, or a Kaggle dataset through
   ``kagglehub``), unless ``DL_OFFLINE=1``.

Every file is hashed after every copy or download and before its first use from the cache.
A stand-in (data that is not the canonical file, e.g. the JPEG re-encoding of CIFAR-10 that
offline machines have) is used only when the caller allows it (``allow_standin=True`` or
``DL_ALLOW_STANDIN=1``), and the loader says which variant it returned.
Files are written under a temporary name and renamed, one lock per dataset, so a crash or a
second notebook never leaves a partial file at a final path. Loaders never unpickle.

Command line: ``python -m dl_utils.data list | fetch NAME... | fetch --all | verify``.

Modules: ``registry`` (datasets, files, hashes, licences), ``sources`` (cache, mirror,
download, verification), ``archives`` (safe extraction), ``parsers`` (file formats),
``loaders`` (one ``load_*`` per dataset), ``cli``, ``errors``. Import names from here.
"""

from __future__ import annotations

from .archives import safe_extract
from .cli import main
from .errors import (
    ChecksumError,
    DatasetError,
    DatasetNotAvailableError,
    DownloadError,
    MalformedDataError,
    UnsafeArchiveError,
)
from .loaders import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    CIFAR10Data,
    CIFAR10ExactSample,
    StandInNotAllowedError,
    load_airline_passengers,
    load_cifar10,
    load_cifar10_exact_test_sample,
    load_fashion_mnist,
    load_hymenoptera,
    load_mnist,
    load_pima_diabetes,
    load_sms_spam,
    load_telco_churn,
    load_tiny_shakespeare,
    stratified_head,
)
from .parsers import (
    PIMA_COLUMNS,
    TELCO_COLUMNS,
    XY,
    read_airline_csv,
    read_cifar10_bin,
    read_cifar10_jpeg_tar,
    read_cifar10_meta,
    read_idx,
    read_pima_csv,
    read_sms_spam,
    read_telco_csv,
    read_u8_labels,
)
from .registry import REGISTRY, Dataset, FileSpec, get_dataset, register
from .sources import fetch, fetch_file, file_hash, verify_file

__all__ = [
    "CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "PIMA_COLUMNS", "REGISTRY", "TELCO_COLUMNS", "XY",
    "CIFAR10Data", "CIFAR10ExactSample",
    "ChecksumError", "Dataset", "DatasetError", "DatasetNotAvailableError", "DownloadError", "FileSpec",
    "MalformedDataError", "StandInNotAllowedError", "UnsafeArchiveError",
    "fetch", "fetch_file", "file_hash", "get_dataset", "load_airline_passengers", "load_cifar10",
    "load_cifar10_exact_test_sample",
    "load_fashion_mnist", "load_hymenoptera", "load_mnist", "load_pima_diabetes", "load_sms_spam",
    "load_telco_churn", "load_tiny_shakespeare", "main", "read_airline_csv", "read_cifar10_bin",
    "read_cifar10_jpeg_tar", "read_cifar10_meta", "read_idx",
    "read_pima_csv", "read_sms_spam", "read_telco_csv", "read_u8_labels", "register", "safe_extract",
    "stratified_head", "verify_file",
]
