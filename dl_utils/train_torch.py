"""One PyTorch training loop for every notebook: tqdm, early stopping, LR schedule, checkpoints.

    train_loader = make_loader(x_train, y_train, batch_size=64, shuffle=True, seed=SEED)
    history = fit(model, train_loader, val_loader, loss_fn, optimizer, epochs=20,
                  scheduler=sched, patience=3, checkpoint="checkpoints/best.pt")
    p_val = predict_proba(model, x_val)

``history`` is a DataFrame (one row per epoch: loss, metrics, val_*, lr, seconds) that
``plots.plot_history`` draws directly. With ``patience`` the best weights (lowest
``monitor``) are restored at the end; checkpoints hold only a ``state_dict`` and are loaded
with ``torch.load(weights_only=True)``, so a checkpoint file can never run code.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of correct predictions; logits ``(N, C)`` (or ``(N,)`` for one binary logit)."""
    if logits.ndim == 1 or logits.shape[-1] == 1:
        pred = (logits.reshape(-1) > 0).long()
        return (pred == targets.reshape(-1).long()).float().mean().item()
    return (logits.argmax(dim=-1) == targets).float().mean().item()


def _to(batch, device):
    if isinstance(batch, (list, tuple)):
        return [_to(b, device) for b in batch]
    return batch.to(device) if isinstance(batch, torch.Tensor) else batch


def _split(batch):
    """A batch is ``(inputs..., target)``; several inputs are passed positionally."""
    *inputs, target = batch
    return inputs, target


def _metric_values(metrics: dict[str, MetricFn], outs: list[torch.Tensor],
                   targets: list[torch.Tensor]) -> dict[str, float]:
    """Each metric once over the concatenated outputs (exact for ROC-AUC, macro-F1, …)."""
    if not metrics:
        return {}
    out_all, tgt_all = torch.cat(outs), torch.cat(targets)
    return {name: float(fn(out_all, tgt_all)) for name, fn in metrics.items()}


def evaluate(model: nn.Module, loader: DataLoader, loss_fn: Callable | None = None,
             metrics: dict[str, MetricFn] | None = None, device: torch.device | str | None = None) -> dict[str, float]:
    """Mean loss and metrics over a loader, with the model in eval mode and no gradients."""
    device = device or next(model.parameters()).device
    model.eval()
    outs, targets, total, n = [], [], 0.0, 0
    with torch.no_grad():
        for batch in loader:
            inputs, target = _split(_to(batch, device))
            out = model(*inputs)
            if loss_fn is not None:
                total += loss_fn(out, target).item() * len(target)
            n += len(target)
            if metrics:
                outs.append(out.detach().cpu())
                targets.append(target.detach().cpu())
    if n == 0:
        raise ValueError("the loader is empty: nothing to evaluate")
    result = {"loss": total / n} if loss_fn is not None else {}
    result.update(_metric_values(metrics or {}, outs, targets))
    return result


def predict(model: nn.Module, loader: DataLoader, device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs and targets for a whole loader, as NumPy arrays."""
    device = device or next(model.parameters()).device
    model.eval()
    outs, targets = [], []
    with torch.no_grad():
        for batch in loader:
            inputs, target = _split(_to(batch, device))
            outs.append(model(*inputs).cpu())
            targets.append(target.cpu())
    return torch.cat(outs).numpy(), torch.cat(targets).numpy()


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """Save the model's ``state_dict`` (tensors only) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return path


def load_checkpoint(model: nn.Module, path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """Load a ``state_dict`` with ``weights_only=True`` (refuses pickled code) into ``model``."""
    state = torch.load(Path(path), map_location=device, weights_only=True)
    model.load_state_dict(state)
    return model


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None,
        loss_fn: Callable, optimizer: torch.optim.Optimizer, epochs: int, *,
        scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None = None,
        metrics: dict[str, MetricFn] | None = None, patience: int | None = None,
        monitor: str = "val_loss", checkpoint: str | Path | None = None,
        device: torch.device | str | None = None, grad_clip: float | None = None,
        progress: bool = True, eval_train: bool = False) -> pd.DataFrame:
    """Train for ``epochs`` (fewer with early stopping) and return the per-epoch history.

    ``monitor`` (lower is better) drives early stopping, ``ReduceLROnPlateau`` and the best
    checkpoint; without a validation loader it falls back to the training loss. With
    ``patience`` the weights of the best epoch are restored before returning (from
    ``checkpoint`` if given, else from a copy kept in memory).

    Training columns (``loss`` and each metric) are, by default, computed from the outputs the
    training steps already produced, at no extra cost (the Keras convention): the loss is the
    batch-size-weighted mean of the batch losses, and each metric is computed once over the
    epoch's concatenated outputs (the weighted mean of batch accuracies, but exact for ROC-AUC
    or macro-F1). They are running values: the weights change during the epoch, and dropout and
    batch norm are in training mode, so the training loss can sit above ``val_loss`` without
    anything being wrong. ``eval_train=True`` instead pays one more clean pass over the training set
    per epoch (eval mode, end-of-epoch weights), directly comparable with ``val_*``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be ≥ 1, got {epochs}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    metrics = metrics or {}
    rows, best, best_state, bad_epochs = [], float("inf"), None, 0
    bar = tqdm(range(1, epochs + 1), desc="epochs", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.time()
        model.train()
        total, n = torch.zeros((), device=device), 0  # float32: MPS has no float64
        outs, targets = [], []
        for batch in train_loader:
            inputs, target = _split(_to(batch, device))
            optimizer.zero_grad(set_to_none=True)
            out = model(*inputs)
            loss = loss_fn(out, target)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += loss.detach().float() * len(target)  # stays on the device: no sync per batch
            n += len(target)
            if metrics and not eval_train:
                outs.append(out.detach().cpu())
                targets.append(target.detach().cpu())
        if n == 0:
            raise ValueError("the training loader is empty: nothing to train on")
        row = {"epoch": epoch}
        if eval_train:
            row.update(evaluate(model, train_loader, loss_fn, metrics, device))
        else:
            row["loss"] = total.item() / n
            row.update(_metric_values(metrics, outs, targets))
        if val_loader is not None:
            row.update({f"val_{k}": v for k, v in evaluate(model, val_loader, loss_fn, metrics, device).items()})
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["seconds"] = time.time() - start
        rows.append(row)
        current = row.get(monitor, row["loss"])
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(current)
            else:
                scheduler.step()
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k not in {"epoch", "lr", "seconds"}})
        if current < best:
            best, bad_epochs = current, 0
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint is not None:
                save_checkpoint(model, checkpoint)
        else:
            bad_epochs += 1
            if patience is not None and bad_epochs >= patience:
                if progress:
                    bar.write(f"early stopping after epoch {epoch}: {monitor} has not improved for {patience} epochs")
                break
    bar.close()
    if patience is not None and best_state is not None:
        if checkpoint is not None:
            load_checkpoint(model, checkpoint, device)
        else:
            model.load_state_dict(best_state)
    return pd.DataFrame(rows)


def _as_tensor(a: np.ndarray | torch.Tensor | pd.DataFrame | pd.Series, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().to(dtype)
    arr = np.asarray(a)
    if not arr.flags.writeable:  # e.g. pandas copy-on-write views: torch warns about sharing them
        arr = arr.copy()
    return torch.as_tensor(arr, dtype=dtype)


def _target_dtype(a: np.ndarray | torch.Tensor | pd.DataFrame | pd.Series) -> torch.dtype:
    """float32 for floating targets (regression, ``BCEWithLogitsLoss``), int64 for integer or
    boolean ones (class indices for ``CrossEntropyLoss``)."""
    if isinstance(a, torch.Tensor):
        return torch.float32 if a.is_floating_point() else torch.int64
    kind = np.asarray(a).dtype.kind
    if kind == "f":
        return torch.float32
    if kind in "biu":
        return torch.int64
    raise TypeError(f"targets of dtype {np.asarray(a).dtype} cannot become a tensor; convert them to numbers")


def make_loader(*arrays: np.ndarray | torch.Tensor | pd.DataFrame | pd.Series, batch_size: int = 256,
                shuffle: bool = False, seed: int | None = None, input_dtype: torch.dtype = torch.float32,
                target_dtype: torch.dtype | None = None) -> DataLoader:
    """A ``DataLoader`` over in-memory arrays (NumPy, pandas or tensors), as ``fit`` expects.

    ``make_loader(x, y, ...)``: every array but the last is an input (cast to ``input_dtype``,
    float32 by default); the last is the target, cast to ``target_dtype`` or, if None, to float32
    when it holds floats and int64 when it holds integers or booleans. So 0/1 labels for
    ``BCEWithLogitsLoss`` need ``target_dtype=torch.float32`` (or float labels), while class
    indices for ``CrossEntropyLoss`` work as they are. ``make_loader(x)`` (one array) holds
    inputs only, e.g. for ``predict_proba``. With ``shuffle`` and a ``seed`` the order comes from
    a seeded ``torch.Generator``, so the epochs' orders are the same on every run.
    """
    if not arrays:
        raise ValueError("make_loader needs at least one array")
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) > 1:
        raise ValueError(f"arrays must have the same length, got {lengths}")
    if len(arrays) == 1:
        tensors = [_as_tensor(arrays[0], input_dtype)]
    else:
        *inputs, target = arrays
        tensors = [_as_tensor(a, input_dtype) for a in inputs]
        tensors.append(_as_tensor(target, target_dtype or _target_dtype(target)))
    generator = torch.Generator().manual_seed(seed) if shuffle and seed is not None else None
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=0)


def predict_proba(model: nn.Module, x: np.ndarray | torch.Tensor | pd.DataFrame | DataLoader,
                  batch_size: int = 1024, device: torch.device | str | None = None) -> np.ndarray:
    """Class probabilities from a model that outputs logits, as NumPy (eval mode, no gradients).

    One logit per row (output ``(N,)`` or ``(N, 1)``): the sigmoid, shape ``(N,)`` — the
    probability of class 1. Several logits ``(N, C)``: the softmax, shape ``(N, C)``.
    ``x`` is an input array (cast to float32, see ``make_loader``) or a ``DataLoader``; a loader
    whose batches hold several tensors is read as ``(inputs..., target)`` and the target ignored.
    """
    loader = x if isinstance(x, DataLoader) else make_loader(x, batch_size=batch_size)
    device = device or next(model.parameters()).device
    model.eval()
    outs = []
    with torch.no_grad():
        for batch in loader:
            batch = _to(batch, device)
            if isinstance(batch, torch.Tensor):
                inputs = [batch]
            else:
                inputs = batch if len(batch) == 1 else _split(batch)[0]
            outs.append(model(*inputs).float().cpu())
    if not outs:
        raise ValueError("no inputs: nothing to predict")
    logits = torch.cat(outs)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return torch.sigmoid(logits.reshape(len(logits))).numpy()
    return torch.softmax(logits, dim=-1).numpy()


def _module_macs(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return int(output[0].numel() * (module.in_channels // module.groups) * kh * kw)
    if isinstance(module, nn.Linear):
        return int(output[0].numel() * module.in_features)
    return 0


def layer_table(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32),
                leaves: bool = True) -> pd.DataFrame:
    """One row per module call, in forward order: name, type, output shape (without the batch axis),
    parameters, and multiply-adds (convolutions and linear layers) for one input of ``input_shape``.

    ``leaves=True`` lists the modules without children (every conv, norm, activation, pool); a module
    called twice (a shared ReLU) gets a second row named ``name (2)`` with its parameters counted once.
    ``leaves=False`` lists the model's direct children, each with the totals of what it contains.
    Read by running one zero input through the model with forward hooks (eval mode, no gradients).
    """
    modules = {n: m for n, m in model.named_modules() if n}
    leaf = {n for n, m in modules.items() if not list(m.children())}
    top = {n for n in modules if "." not in n}
    events: list[tuple[str, torch.Size, int]] = []

    def hook(name: str):
        def record(module, inputs, output):
            events.append((name, output.shape, _module_macs(module, output)))
        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in leaf | top]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows, calls = [], {}
    leaf_macs = [(n, m) for n, _, m in events if n in leaf]
    for name, shape, macs in events:
        if name not in (leaf if leaves else top):
            continue
        calls[name] = calls.get(name, 0) + 1
        first = calls[name] == 1
        if not leaves:  # a child's cost is that of the leaf calls inside it
            macs = sum(m for n, m in leaf_macs if n == name or n.startswith(name + ".")) if first else 0
        rows.append({"layer": name if first else f"{name} ({calls[name]})", "type": type(modules[name]).__name__,
                     "output": "×".join(str(d) for d in shape[1:]),
                     "parameters": sum(p.numel() for p in modules[name].parameters()) if first else 0,
                     "multiply_adds": macs})
    return pd.DataFrame(rows)


def multiply_adds(model: nn.Module, input_shape: tuple[int, ...] = (3, 32, 32)) -> int:
    """Multiply-adds of one forward pass of one input (convolutions and linear layers)."""
    return int(layer_table(model, input_shape)["multiply_adds"].sum())
