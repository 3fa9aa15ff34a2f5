"""Keras 3 glue: the standard callbacks and History → DataFrame.

Backend-neutral: works with ``KERAS_BACKEND=tensorflow`` (the default here) and
``KERAS_BACKEND=torch`` (GPU machines with PyTorch but no TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

import keras
import pandas as pd
from tqdm import tqdm


class TqdmProgress(keras.callbacks.Callback):
    """One tqdm bar over epochs with the latest metrics; use with ``verbose=0`` in ``fit``."""

    def __init__(self, epochs: int, desc: str = "epochs"):
        super().__init__()
        self.epochs, self.desc, self.bar = epochs, desc, None

    def on_train_begin(self, logs=None):
        self.bar = tqdm(total=self.epochs, desc=self.desc, unit="epoch")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(1)
        self.bar.set_postfix({k: f"{v:.4f}" for k, v in (logs or {}).items() if k != "learning_rate"})

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


def standard_callbacks(epochs: int, *, patience: int | None = None, monitor: str = "val_loss",
                       checkpoint: str | Path | None = None, reduce_lr_patience: int | None = None,
                       progress: bool = True) -> list[keras.callbacks.Callback]:
    """Early stopping (restoring the best weights), best-model checkpoint, LR reduction, tqdm."""
    cbs: list[keras.callbacks.Callback] = []
    if progress:
        cbs.append(TqdmProgress(epochs))
    if patience is not None:
        cbs.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience,
                                                 restore_best_weights=True, verbose=1))
    if checkpoint is not None:
        Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
        cbs.append(keras.callbacks.ModelCheckpoint(str(checkpoint), monitor=monitor, save_best_only=True))
    if reduce_lr_patience is not None:
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.5,
                                                     patience=reduce_lr_patience, verbose=1))
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
