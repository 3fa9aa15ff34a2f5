"""Time dl_utils.scratch.Conv2D (NumPy, im2col) against torch.nn.functional.conv2d on the CPU.

Forward + backward (gradients w.r.t. input, weights and bias) for the convolution shapes of
notebooks/04_cnn_from_scratch.ipynb, in float32, median of several repeats. Not a test: the
numbers depend on the machine and its load. Run from the repository root:

    .venv/bin/python benchmarks/conv2d_benchmark.py [--repeats 50] [--threads 1]

Both libraries get the same number of threads (default 1).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from dl_utils import scratch

# (name, batch, in_channels, height, width, out_channels, kernel, stride, padding): notebook 04's CNN
SHAPES = [
    ("conv1 (04)", 64, 1, 28, 28, 16, 3, 1, 1),
    ("conv2 (04)", 64, 16, 14, 14, 32, 3, 1, 1),
    ("stride-2 5x5 (extra)", 64, 8, 28, 28, 16, 5, 2, 2),
]


def median_times(fns: list, repeats: int) -> list[float]:
    """Median seconds of each function; calls are interleaved so that a busy machine slows all alike."""
    for fn in fns:
        fn()  # warm-up
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [float(np.median(ts)) for ts in times]


def time_shape(rng: np.random.Generator, n: int, c: int, h: int, w: int, f: int, k: int, s: int, p: int,
               repeats: int) -> tuple[float, float]:
    """Median forward+backward seconds of the NumPy layer and of torch for one shape."""
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    layer = scratch.Conv2D(c, f, k, s, p, rng=rng, dtype=np.float32)
    dout = rng.standard_normal(layer.forward(x).shape).astype(np.float32)

    def ours() -> None:
        layer.forward(x)
        layer.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["W"], requires_grad=True)
    bt = torch.tensor(layer.params["b"], requires_grad=True)
    dt = torch.tensor(dout)

    def theirs() -> None:
        out = F.conv2d(xt, wt, bt, stride=s, padding=p)
        xt.grad = wt.grad = bt.grad = None
        out.backward(dt)

    t_np, t_torch = median_times([ours, theirs], repeats)
    return t_np, t_torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both NumPy's BLAS and torch (default 1: fair, and stable on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    rng = np.random.default_rng(0)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"numpy {np.__version__}, torch {torch.__version__} ; {args.threads} thread(s) each; float32; "
          f"median of {args.repeats} interleaved forward+backward passes")
    header = f"{'shape':<28s} {'input (N,C,H,W)':<18s} {'out':>4s} {'k/s/p':>7s} {'numpy ms':>9s} {'torch ms':>9s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    for name, n, c, h, w, f, k, s, p in SHAPES:
        t_np, t_torch = time_shape(rng, n, c, h, w, f, k, s, p, args.repeats)
        print(f"{name:<28s} {str((n, c, h, w)):<18s} {f:>4d} {f'{k}/{s}/{p}':>7s} "
              f"{1e3 * t_np:>9.2f} {1e3 * t_torch:>9.2f} {t_np / t_torch:>5.1f}x")


if __name__ == "__main__":
    main()
