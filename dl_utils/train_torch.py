"""One PyTorch training loop for every notebook: tqdm, early stopping, LR schedule, checkpoints.

    history = fit(model, train_loader, val_loader, loss_fn, optimizer, epochs=20,
                  scheduler=sched, patience=3, checkpoint="checkpoints/best.pt")

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
from torch.utils.data import DataLoader
from tqdm import tqdm

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
            outs.append(out.detach().cpu())
            targets.append(target.detach().cpu())
    if n == 0:
        raise ValueError("the loader is empty: nothing to evaluate")
    out_all, tgt_all = torch.cat(outs), torch.cat(targets)
    result = {"loss": total / n} if loss_fn is not None else {}
    for name, fn in (metrics or {}).items():
        result[name] = float(fn(out_all, tgt_all))
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
        progress: bool = True) -> pd.DataFrame:
    """Train for ``epochs`` (fewer with early stopping) and return the per-epoch history.

    ``monitor`` (lower is better) drives early stopping, ``ReduceLROnPlateau`` and the best
    checkpoint; without a validation loader it falls back to the training loss.
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
        total, n = 0.0, 0
        for batch in train_loader:
            inputs, target = _split(_to(batch, device))
            optimizer.zero_grad(set_to_none=True)
            out = model(*inputs)
            loss = loss_fn(out, target)
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            total += loss.item() * len(target)
            n += len(target)
        row = {"epoch": epoch, "loss": total / max(n, 1)}
        if metrics:
            row.update({k: v for k, v in evaluate(model, train_loader, None, metrics, device).items()})
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
