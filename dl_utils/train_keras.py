"""Keras 3 glue: a progress bar, Keras' standard callbacks (quiet), and History → DataFrame.

    cbs = standard_callbacks(patience=5, checkpoint="checkpoints/best.keras")
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=50, verbose=0, callbacks=cbs)
    early_stopping_result(cbs)     # {"stopped_epoch": 23, "best_epoch": 18}: for the notebook to report

Backend-neutral: works with ``KERAS_BACKEND=tensorflow`` (the default here) and
``KERAS_BACKEND=torch`` (GPU machines with PyTorch but no TensorFlow).
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import pandas as pd
from tqdm.auto import tqdm


class TqdmProgress(keras.callbacks.Callback):
    """One tqdm bar over epochs with the latest metrics; use with ``verbose=0`` in ``fit``.

    ``epochs`` sets the bar's length; None takes it from ``fit(epochs=...)``.
    """

    def __init__(self, epochs: int | None = None, desc: str = "epochs"):
        super().__init__()
        self.epochs, self.desc, self.bar = epochs, desc, None

    def on_train_begin(self, logs=None):
        total = self.epochs or (self.params or {}).get("epochs")
        self.bar = tqdm(total=total, desc=self.desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(1)
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items() if not k.startswith("learning_rate")})

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def progress_callback(epochs: int | None = None, desc: str = "epochs") -> TqdmProgress:
    """The progress bar alone: one ``tqdm.auto`` bar over epochs (a widget in Jupyter)."""
    return TqdmProgress(epochs, desc)


def early_stopping_result(callbacks: list[keras.callbacks.Callback]) -> dict[str, int | None]:
    """What the ``EarlyStopping`` in ``callbacks`` did in the last ``fit``, since it prints nothing.

    ``stopped_epoch``: the epoch (from 1) after which it ended training, None if every epoch ran;
    ``best_epoch``: the epoch (from 1) of the best ``monitor`` value, whose weights were restored.
    Both None when there is no ``EarlyStopping`` (no ``patience``) or ``fit`` has not run.
    """
    es = next((cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)), None)
    if es is None or getattr(es, "best", None) is None:
        return {"stopped_epoch": None, "best_epoch": None}
    return {"stopped_epoch": es.stopped_epoch + 1 if es.stopped_epoch > 0 else None,
            "best_epoch": es.best_epoch + 1}


def standard_callbacks(epochs: int | None = None, *, patience: int | None = None, monitor: str = "val_loss",
                       checkpoint: str | Path | None = None, reduce_lr_patience: int | None = None,
                       progress: bool = True) -> list[keras.callbacks.Callback]:
    """Keras' standard callbacks, each only if asked for, all silent, plus a progress bar.

    - ``patience``: ``EarlyStopping`` on ``monitor``, restoring the best epoch's weights at the end;
    - ``checkpoint``: ``ModelCheckpoint`` keeping the best model at that path;
    - ``reduce_lr_patience``: ``ReduceLROnPlateau`` halving the learning rate (the rate of each
      epoch is then in the history's ``learning_rate`` column);
    - ``progress`` (on by default, since ``fit`` runs with ``verbose=0``): our ``TqdmProgress``, one
      ``tqdm.auto`` bar over epochs; it is not a Keras callback, ``progress=False`` leaves it out.

    None of them prints: ``early_stopping_result(callbacks)`` says afterwards what early stopping did.
    ``epochs`` only sets the bar's length and may be left out (the bar then reads ``fit(epochs=...)``).
    """
    cbs: list[keras.callbacks.Callback] = []
    if progress:
        cbs.append(TqdmProgress(epochs))
    if patience is not None:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                                 restore_best_weights=True, verbose=0))
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        cbs.append(keras.callbacks.ModelCheckpoint(str(checkpoint), monitor=monitor, save_best_only=True,
                                                   verbose=0))
    if reduce_lr_patience is not None:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5,
                                                     patience=reduce_lr_patience, verbose=0))
    return cbs


def history_frame(history: keras.callbacks.History | dict) -> pd.DataFrame:
    """A Keras History (or its ``.history`` dict) as a DataFrame with an ``epoch`` column from 1."""
    hist = history.history if hasattr(history, "history") else history
    df = pd.DataFrame(hist)
    df.insert(0, "epoch", range(1, len(df) + 1))
    return df


def count_params(model: keras.Model) -> dict[str, int]:
    """Trainable and non-trainable parameter counts (what ``model.summary()`` prints)."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    frozen = sum(int(keras.ops.size(w)) for w in model.non_trainable_weights)
    return {"trainable": trainable, "non_trainable": frozen, "total": trainable + frozen}


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch's training steps (validation excluded), for images/s.

    Time runs from ``on_epoch_begin`` to the end of the epoch's last training batch, so the
    validation pass that ``fit`` runs afterwards is not counted.
    """

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._start = self._last = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self._last - self._start)

    def images_per_second(self, images_per_epoch: int, skip_first: bool = True) -> float:
        """Training images/s over the timed epochs; the first (graph tracing, warm-up) is skipped if others exist."""
        times = self.seconds[1:] if skip_first and len(self.seconds) > 1 else self.seconds
        if not times:
            raise ValueError("no epoch has been timed yet")
        return images_per_epoch * len(times) / sum(times)


def _layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-adds of one image through ``layer``: convolutions and dense layers (the rest is small)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        return int(h * w * c_out * kh * kw)
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        kh, kw = layer.kernel_size
        return int(h * w * c_out * kh * kw * layer.input.shape[-1] // layer.groups)
    if isinstance(layer, keras.layers.Dense):
        return int(layer.input.shape[-1] * layer.units)
    return 0


def multiply_adds(model: keras.Model) -> int:
    """Multiply-adds of one forward pass of one image (functional model; nested models included)."""
    total = 0
    for layer in model.layers:
        total += multiply_adds(layer) if isinstance(layer, keras.Model) else _layer_macs(layer)
    return total


def layer_table(model: keras.Model, skip: tuple[type, ...] = (keras.layers.InputLayer,)) -> pd.DataFrame:
    """One row per layer: name, type, output shape (without the batch axis), parameters, multiply-adds.

    Deterministic for a model whose layers are named (unlike ``model.summary()``'s counters and
    box drawing), so a notebook can print it in a ``NBVAL_CHECK_OUTPUT`` cell.
    """
    rows = []
    for layer in model.layers:
        if isinstance(layer, skip):
            continue
        shape = layer.output.shape if hasattr(layer, "output") else None
        macs = multiply_adds(layer) if isinstance(layer, keras.Model) else _layer_macs(layer)
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "output": "×".join(str(d) for d in shape[1:]) if shape is not None else "",
                     "parameters": int(layer.count_params()) if layer.weights else 0,
                     "multiply_adds": macs})
    return pd.DataFrame(rows)


def cifar_augmentation(translate: int = 4, flip: bool = True, brightness: float | None = None,
                       seed: int | None = None, name: str = "augment") -> keras.Sequential:
    """Training-time augmentation as Keras layers (inactive at inference), for 0–255 pixel inputs.

    ``translate``: random shifts of up to that many pixels with zero fill and nearest-pixel
    sampling, which is the classic "pad by 4, crop 32×32 at random" of CIFAR-10 training;
    ``flip``: horizontal flips; ``brightness``: a random brightness change of up to that fraction
    of the 0–255 range. Put it first in the model, before rescaling. Backend-neutral.
    """
    steps: list[keras.layers.Layer] = []
    if translate:
        f = translate / 32
        steps.append(keras.layers.RandomTranslation(f, f, fill_mode="constant", interpolation="nearest",
                                                    seed=seed, name=f"{name}_shift"))
    if flip:
        steps.append(keras.layers.RandomFlip("horizontal", seed=seed, name=f"{name}_flip"))
    if brightness:
        steps.append(keras.layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed,
                                                   name=f"{name}_brightness"))
    if not steps:
        raise ValueError("cifar_augmentation needs at least one of translate, flip, brightness")
    return keras.Sequential(steps, name=name)
