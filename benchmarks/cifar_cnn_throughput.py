"""Training and inference throughput of candidate CIFAR-10 CNNs in Keras 3, on this machine.

    python benchmarks/cifar_cnn_throughput.py                     # the default candidates, Keras' backend
    KERAS_BACKEND=torch python benchmarks/cifar_cnn_throughput.py --models vgg11 --widths 0.25 0.5

Why: a notebook's full profile must fit a time budget (about 45 minutes on 2 CPU cores for the classic
CNNs), and the cost of an epoch depends on the network far more than on anything else. This measures,
for each candidate at each width multiplier, the parameters, the multiply-adds per 32×32 image (counted
from the layer shapes: convolutions and dense layers), and training and inference images/s on random
data (a fixed number of steps after a warm-up), and prints the minutes one epoch of 40,000 images would
take. Random data is enough: the cost of a step does not depend on the pixel values.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from dl_utils.train_keras import multiply_adds  # noqa: E402


def _conv(x, filters: int, kernel: int = 3, bn: bool = False, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=not bn)(x)
    if bn:
        x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def alexnet(width: float, bn: bool = False) -> keras.Model:
    """The mini-AlexNet shape: 5 convolutions (64-192-384-256-256 at width 1), 3 max-pools, 2 × 1,024 dense."""
    c = [max(8, round(f * width)) for f in (64, 192, 384, 256, 256)]
    inp = keras.Input((32, 32, 3))
    x = layers.MaxPooling2D()(_conv(inp, c[0], bn=bn))
    x = layers.MaxPooling2D()(_conv(x, c[1], bn=bn))
    x = _conv(_conv(_conv(x, c[2], bn=bn), c[3], bn=bn), c[4], bn=bn)
    x = layers.Flatten()(layers.MaxPooling2D()(x))
    dense = max(64, round(1024 * width))
    for _ in range(2):
        x = layers.Dropout(0.5)(layers.Dense(dense, activation="relu")(x))
    return keras.Model(inp, layers.Dense(10)(x), name=f"alexnet{'_bn' if bn else ''}_w{width:g}")


VGG = {"vgg11": [1, 1, 2, 2, 2], "vgg13": [2, 2, 2, 2, 2], "vgg16": [2, 2, 3, 3, 3]}


def vgg(name: str, width: float) -> keras.Model:
    """VGG-11/13/16 stacks of 3×3 convolutions with batch norm, adapted to 32×32 (five pools to 1×1)."""
    inp = x = keras.Input((32, 32, 3))
    for n, filters in zip(VGG[name], (64, 128, 256, 512, 512), strict=True):
        for _ in range(n):
            x = _conv(x, max(8, round(filters * width)), bn=True)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    return keras.Model(inp, layers.Dense(10)(x), name=f"{name}_w{width:g}")


def _inception(x, b1: int, b3r: int, b3: int, b5r: int, b5: int, pool: int):
    return layers.Concatenate()([
        _conv(x, b1, 1, bn=True),
        _conv(_conv(x, b3r, 1, bn=True), b3, 3, bn=True),
        _conv(_conv(x, b5r, 1, bn=True), b5, 5, bn=True),
        _conv(layers.MaxPooling2D(3, strides=1, padding="same")(x), pool, 1, bn=True),
    ])


def inception(width: float) -> keras.Model:
    """A small GoogLeNet for 32×32: a stem, 2 + 2 Inception modules with 1×1 reductions, global pooling."""
    def w(f: int) -> int:
        return max(8, round(f * width))

    inp = keras.Input((32, 32, 3))
    x = _conv(inp, w(96), bn=True)
    x = _inception(x, w(32), w(48), w(64), w(8), w(16), w(16))
    x = _inception(x, w(64), w(64), w(96), w(16), w(48), w(32))
    x = layers.MaxPooling2D()(x)
    x = _inception(x, w(96), w(48), w(104), w(8), w(24), w(32))
    x = _inception(x, w(80), w(56), w(112), w(12), w(32), w(32))
    x = layers.GlobalAveragePooling2D()(layers.MaxPooling2D()(x))
    return keras.Model(inp, layers.Dense(10)(x), name=f"inception_w{width:g}")


BUILDERS: dict[str, Callable[[float], keras.Model]] = {
    "alexnet": alexnet, "alexnet_bn": lambda w: alexnet(w, bn=True),
    **{name: (lambda w, n=name: vgg(n, w)) for name in VGG}, "inception": inception,
}


def measure(model: keras.Model, batch: int, steps: int, warmup: int) -> dict[str, float]:
    """Training and inference images/s on random data: ``warmup`` steps, then ``steps`` timed ones."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * (steps + warmup), 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, len(x))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:batch * warmup], y[:batch * warmup], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(x[batch * warmup:], y[batch * warmup:], batch_size=batch, epochs=1, verbose=0)
    train = batch * steps / (time.perf_counter() - start)
    model.predict(x[:batch], batch_size=batch, verbose=0)
    start = time.perf_counter()
    model.predict(x[:batch * steps], batch_size=batch, verbose=0)
    infer = batch * steps / (time.perf_counter() - start)
    return {"train_images_per_s": train, "infer_images_per_s": infer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    parser.add_argument("--widths", nargs="+", type=float, default=[0.5, 1.0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per network")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--epoch-images", type=int, default=40_000, help="images per epoch for the minutes column")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs; batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up steps")
    header = f"{'network':<18}{'parameters':>12}{'MACs/image':>13}{'train img/s':>13}{'infer img/s':>13}{'min/epoch':>11}"
    print(header + "\n" + "-" * len(header))
    rows = []
    for name in args.models:
        for width in args.widths:
            keras.utils.clear_session()
            keras.utils.set_random_seed(0)
            model = BUILDERS[name](width)
            row = {"network": model.name, "parameters": model.count_params(), "macs": multiply_adds(model),
                   **measure(model, args.batch, args.steps, args.warmup)}
            row["minutes_per_epoch"] = args.epoch_images / row["train_images_per_s"] / 60
            rows.append(row)
            print(f"{row['network']:<18}{row['parameters']:>12,}{row['macs'] / 1e6:>12.1f}M"
                  f"{row['train_images_per_s']:>13.0f}{row['infer_images_per_s']:>13.0f}"
                  f"{row['minutes_per_epoch']:>11.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"backend": keras.backend.backend(), "cpus": os.cpu_count(), "batch": args.batch,
                       "rows": rows}, f, indent=1)
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
