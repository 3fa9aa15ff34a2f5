"""Deep learning from scratch in NumPy: layers with explicit ``forward`` and ``backward``.

Everything a from-scratch notebook needs, vectorized, in one file that imports only NumPy:

* layers — :class:`Dense`, activations (:class:`Linear`, :class:`Sigmoid`, :class:`Tanh`,
  :class:`ReLU`, :class:`Softmax`), :class:`Dropout` (inverted), :class:`Conv2D` (padding and
  stride, im2col), :class:`MaxPool2D`, :class:`AvgPool2D`, :class:`Flatten`, :class:`Residual`,
  :class:`Sequential`;
* recurrent — :class:`RNNCell`, :class:`GRUCell`, :class:`LSTMCell` and the layers :class:`RNN`,
  :class:`GRU`, :class:`LSTM` (backpropagation through time; truncated BPTT by feeding the last
  state of one chunk as the initial state of the next);
* losses computed from logits, stably — :func:`mse_loss`, :func:`binary_cross_entropy`,
  :func:`softmax_cross_entropy` — each returning ``(loss, gradient)``;
* initializers (:func:`init_weights`: random, Xavier/Glorot, He), :func:`l2_penalty`,
  :func:`clip_grad_norm`, :func:`minibatches`;
* optimizers :class:`SGD` (batch GD or mini-batch SGD, depending on the batch you feed it),
  :class:`Momentum`, :class:`Adam`;
* :func:`gradcheck` and :func:`layer_gradcheck` (central finite differences).

Conventions. Images are ``(N, C, H, W)`` and sequences ``(N, T, D)``, as in PyTorch. A layer's
``backward(dout)`` takes the gradient of the loss with respect to its output, *stores* (not adds)
the gradients of its parameters in ``layer.grads`` and returns the gradient with respect to its
input. Dense weights are ``(n_in, n_out)`` (``y = x @ W + b``); convolution and recurrent weights
use PyTorch's layouts, so the tests can copy them into ``torch.nn`` modules. ``parameters()``
returns ``(name, value, grad)`` triples that the optimizers update in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Array = np.ndarray
Param = tuple[str, Array, Array]
State = tuple[Array, ...]

__all__ = [
    "Adam", "AvgPool2D", "Conv2D", "Dense", "Dropout", "Flatten", "GRU", "GRUCell", "GradcheckResult",
    "LSTM", "LSTMCell", "Layer", "Linear", "MaxPool2D", "Momentum", "RNN", "RNNCell", "ReLU", "Residual",
    "SGD", "Sequential", "Sigmoid", "Softmax", "Tanh", "binary_cross_entropy", "clip_grad_norm",
    "gradcheck", "init_weights", "l2_penalty", "layer_gradcheck", "log_softmax", "minibatches",
    "mse_loss", "numerical_gradient", "one_hot", "relative_error", "sigmoid", "softmax",
    "softmax_cross_entropy",
]


# --------------------------------------------------------------------------- basics


def sigmoid(x: Array) -> Array:
    """Logistic function, written as ``(1 + tanh(x/2)) / 2`` so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def log_softmax(x: Array, axis: int = -1) -> Array:
    """``log(softmax(x))`` with the max subtracted first (stable for any logits)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: Array, axis: int = -1) -> Array:
    """Softmax along ``axis``, stable for large logits."""
    return np.exp(log_softmax(x, axis))


def one_hot(y: Array, n_classes: int, dtype: type = np.float64) -> Array:
    """Integer labels ``(...)`` → one-hot ``(..., n_classes)``."""
    return np.eye(n_classes, dtype=dtype)[np.asarray(y)]


def init_weights(shape: tuple[int, ...], fan_in: int, fan_out: int, method: str = "he",
                 rng: np.random.Generator | None = None, dtype: type = np.float32,
                 scale: float = 0.01) -> Array:
    """Gaussian weights: ``random`` (σ = ``scale``), ``xavier`` (σ² = 2/(fan_in+fan_out)), ``he`` (σ² = 2/fan_in)."""
    rng = rng if rng is not None else np.random.default_rng()
    std = {"random": scale, "xavier": np.sqrt(2.0 / (fan_in + fan_out)), "he": np.sqrt(2.0 / fan_in)}
    if method not in std:
        raise ValueError(f"unknown initializer {method!r}; use one of {sorted(std)}")
    return (rng.standard_normal(shape) * std[method]).astype(dtype)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _check_input(layer: object, x: Array, ndim: int | None, layout: str, last: int | None = None,
                 axis: int = -1) -> None:
    """Raise a ValueError that names the layer, the layout it expects and the shape it got."""
    shape = np.shape(x)
    if (ndim is not None and len(shape) != ndim) or (last is not None and (not shape or shape[axis] != last)):
        want = f"{layout}" + (f" with {last} at axis {axis}" if last is not None else "")
        raise ValueError(f"{type(layer).__name__} expects input {want}, got shape {shape}")


# --------------------------------------------------------------------------- layers


class Layer:
    """Base class: ``params``/``grads`` dicts, ``forward``, ``backward`` and ``parameters``."""

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}

    def forward(self, x: Array, training: bool = True) -> Array:
        """Compute the output and keep what ``backward`` needs."""
        raise NotImplementedError

    def backward(self, dout: Array) -> Array:
        """Gradient w.r.t. the input, given ``dout`` = gradient w.r.t. the output."""
        raise NotImplementedError

    def __call__(self, x: Array, training: bool = True) -> Array:
        return self.forward(x, training)

    def parameters(self) -> list[Param]:
        """``(name, value, grad)`` for every parameter (grads exist after ``backward``)."""
        return [(k, v, self.grads.get(k, np.zeros_like(v))) for k, v in self.params.items()]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}{tuple(v.shape)}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes})"


class Dense(Layer):
    """Fully connected layer ``y = x @ W + b``; ``x`` may have extra leading axes ``(..., n_in)``."""

    def __init__(self, n_in: int, n_out: int, init: str = "he", rng: np.random.Generator | None = None,
                 dtype: type = np.float32, scale: float = 0.01) -> None:
        super().__init__()
        self.params = {"W": init_weights((n_in, n_out), n_in, n_out, init, rng, dtype, scale),
                       "b": np.zeros(n_out, dtype=dtype)}

    def forward(self, x: Array, training: bool = True) -> Array:
        _check_input(self, x, None, "(..., n_in)", last=self.params["W"].shape[0])
        self._x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: Array) -> Array:
        n_in, n_out = self.params["W"].shape
        x2, d2 = self._x.reshape(-1, n_in), dout.reshape(-1, n_out)
        self.grads = {"W": x2.T @ d2, "b": d2.sum(axis=0)}
        return dout @ self.params["W"].T


class Linear(Layer):
    """Identity activation (a "linear" network)."""

    def forward(self, x: Array, training: bool = True) -> Array:
        return x

    def backward(self, dout: Array) -> Array:
        return dout


class ReLU(Layer):
    """``max(x, 0)``; the gradient passes where the input was positive."""

    def forward(self, x: Array, training: bool = True) -> Array:
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout: Array) -> Array:
        return dout * self._mask


class Sigmoid(Layer):
    """Logistic activation; ``σ' = σ(1 − σ)``."""

    def forward(self, x: Array, training: bool = True) -> Array:
        self._y = sigmoid(x)
        return self._y

    def backward(self, dout: Array) -> Array:
        return dout * self._y * (1 - self._y)


class Tanh(Layer):
    """Hyperbolic tangent; ``tanh' = 1 − tanh²``."""

    def forward(self, x: Array, training: bool = True) -> Array:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dout: Array) -> Array:
        return dout * (1 - self._y**2)


class Softmax(Layer):
    """Softmax over the last axis; backward is the Jacobian-vector product ``y ⊙ (d − Σ d·y)``.

    For classification, prefer :func:`softmax_cross_entropy` on the logits (stabler, simpler).
    """

    def forward(self, x: Array, training: bool = True) -> Array:
        self._y = softmax(x)
        return self._y

    def backward(self, dout: Array) -> Array:
        return self._y * (dout - (dout * self._y).sum(axis=-1, keepdims=True))


class Dropout(Layer):
    """Inverted dropout: zero a fraction ``p`` in training and scale the rest by ``1/(1−p)``."""

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p, self.rng = p, rng if rng is not None else np.random.default_rng()

    def forward(self, x: Array, training: bool = True) -> Array:
        if not training or self.p == 0:
            self._mask = None
            return x
        self._mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / (1 - self.p)
        return x * self._mask

    def backward(self, dout: Array) -> Array:
        return dout if self._mask is None else dout * self._mask


class Flatten(Layer):
    """``(N, ...)`` → ``(N, prod(...))``."""

    def forward(self, x: Array, training: bool = True) -> Array:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: Array) -> Array:
        return dout.reshape(self._shape)


class Sequential(Layer):
    """A stack of layers applied in order; backward runs them in reverse."""

    def __init__(self, layers: Sequence[Layer]) -> None:
        super().__init__()
        self.layers = list(layers)

    def forward(self, x: Array, training: bool = True) -> Array:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, dout: Array) -> Array:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def parameters(self) -> list[Param]:
        return [(f"{i}.{name}", v, g) for i, layer in enumerate(self.layers)
                for name, v, g in layer.parameters()]

    def __repr__(self) -> str:
        return "Sequential(\n" + "\n".join(f"  {i}: {layer!r}" for i, layer in enumerate(self.layers)) + "\n)"


class Residual(Layer):
    """``main(x) + shortcut(x)`` (identity shortcut by default): the ResNet building block.

    The gradient reaches the input along both paths and is summed — the "+ 1" that lets very deep
    networks train. Put a :class:`ReLU` after it for the classic post-activation block.
    """

    def __init__(self, main: Layer, shortcut: Layer | None = None) -> None:
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x: Array, training: bool = True) -> Array:
        skip = x if self.shortcut is None else self.shortcut.forward(x, training)
        return self.main.forward(x, training) + skip

    def backward(self, dout: Array) -> Array:
        dskip = dout if self.shortcut is None else self.shortcut.backward(dout)
        return self.main.backward(dout) + dskip

    def parameters(self) -> list[Param]:
        short = [] if self.shortcut is None else [("shortcut." + n, v, g) for n, v, g in self.shortcut.parameters()]
        return [("main." + n, v, g) for n, v, g in self.main.parameters()] + short


# --------------------------------------------------------------------------- convolution and pooling


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every framework) with zero padding and stride.

    im2col: every ``kh×kw×C`` input window becomes a row of a matrix, so the convolution is one
    matrix product with the ``(kh·kw·C, F)`` filter matrix; backward is two more products plus a
    scatter-add of the window gradients (col2im). Inputs and outputs are ``(N, C, H, W)`` and weights
    ``(F, C, kh, kw)`` as in PyTorch; inside, the image is laid out channels-last ``(N, H, W, C)`` so
    that each window row is copied in contiguous runs of ``C`` values (this makes im2col ~20× faster).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, init: str = "he",
                 rng: np.random.Generator | None = None, dtype: type = np.float32) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        kh, kw = self.kernel
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        self.params = {"W": init_weights((out_channels, in_channels, kh, kw), fan_in, fan_out, init, rng, dtype),
                       "b": np.zeros(out_channels, dtype=dtype)}

    def _wmat(self) -> Array:
        """Filters as a ``(kh·kw·C, F)`` matrix, rows in the same order as the im2col columns."""
        W = self.params["W"]
        return W.transpose(2, 3, 1, 0).reshape(-1, W.shape[0])

    def forward(self, x: Array, training: bool = True) -> Array:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        _check_input(self, x, 4, "(N, C, H, W)", last=self.params["W"].shape[1], axis=1)
        n, c, h, w = x.shape
        xp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x.dtype)      # padded, channels-last
        xp[:, ph:ph + h, pw:pw + w, :] = x.transpose(0, 2, 3, 1)
        win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (N, OH, OW, C, kh, kw) view
        oh, ow = win.shape[1:3]
        self._cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * c)   # the im2col copy
        self._xshape = x.shape
        out = self._cols @ self._wmat() + self.params["b"]
        return np.ascontiguousarray(out.reshape(n, oh, ow, -1).transpose(0, 3, 1, 2))

    def backward(self, dout: Array) -> Array:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        n, c, h, w = self._xshape
        f, oh, ow = dout.shape[1:]
        d = dout.transpose(0, 2, 3, 1).reshape(-1, f)
        dw = (self._cols.T @ d).reshape(kh, kw, c, f).transpose(3, 2, 0, 1)
        self.grads = {"W": np.ascontiguousarray(dw), "b": d.sum(axis=0)}
        dcols = (d @ self._wmat().T).reshape(n, oh, ow, kh, kw, c)
        dxp = np.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=dcols.dtype)
        for i in range(kh):                                  # col2im: scatter-add each kernel offset
            for j in range(kw):
                dxp[:, i:i + sh * oh:sh, j:j + sw * ow:sw, :] += dcols[:, :, :, i, j, :]
        return np.ascontiguousarray(dxp[:, ph:ph + h, pw:pw + w, :].transpose(0, 3, 1, 2))


def _offsets(x: Array, kh: int, kw: int, sh: int, sw: int) -> Iterator[tuple[int, tuple[slice, ...]]]:
    """For each kernel offset ``(i, j)``: its index and the slice of ``x`` holding element ``(i, j)``
    of every pooling window. Pooling is then ``kh·kw`` whole-array operations instead of one per window."""
    oh, ow = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i * kw + j, (slice(None), slice(None), slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))


class _Pool2D(Layer):
    """Shared by the pooling layers: window size and stride (default: the window, no overlap)."""

    def __init__(self, kernel_size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel = _pair(kernel_size)
        self.stride = self.kernel if stride is None else _pair(stride)


class MaxPool2D(_Pool2D):
    """Max pooling; the gradient goes only to the (first) arg-max of each window."""

    def forward(self, x: Array, training: bool = True) -> Array:
        _check_input(self, x, 4, "(N, C, H, W)")
        best = arg = None
        for k, sl in _offsets(x, *self.kernel, *self.stride):
            if best is None:
                best, arg = x[sl].copy(), np.zeros(x[sl].shape, dtype=np.int16)
            else:
                better = x[sl] > best
                np.copyto(best, x[sl], where=better)
                arg[better] = k
        self._arg, self._shape = arg, x.shape
        return best

    def backward(self, dout: Array) -> Array:
        dx = np.zeros(self._shape, dtype=dout.dtype)
        for k, sl in _offsets(dx, *self.kernel, *self.stride):
            dx[sl] += np.where(self._arg == k, dout, 0)
        return dx


class AvgPool2D(_Pool2D):
    """Average pooling; each input in a window receives ``dout / (kh·kw)``."""

    def forward(self, x: Array, training: bool = True) -> Array:
        _check_input(self, x, 4, "(N, C, H, W)")
        self._shape = x.shape
        return sum(x[sl] for _, sl in _offsets(x, *self.kernel, *self.stride)) / (self.kernel[0] * self.kernel[1])

    def backward(self, dout: Array) -> Array:
        dx = np.zeros(self._shape, dtype=dout.dtype)
        share = dout / (self.kernel[0] * self.kernel[1])
        for _, sl in _offsets(dx, *self.kernel, *self.stride):
            dx[sl] += share
        return dx


# --------------------------------------------------------------------------- recurrent cells and layers


class _Cell:
    """A recurrent cell: ``W_ih (G·H, D)``, ``W_hh (G·H, H)``, ``b_ih``, ``b_hh`` (PyTorch layout, G gates).

    ``step(xw, state)`` takes the input already projected (``x @ W_ih.T + b_ih``) so a layer can
    project all time steps in one matrix product; ``step_backward`` returns the gradient w.r.t.
    that projection and the previous state, and adds into ``grads["W_hh"]``/``grads["b_hh"]``.
    """

    gates = 1
    n_states = 1

    def __init__(self, input_size: int, hidden_size: int, rng: np.random.Generator | None = None,
                 dtype: type = np.float32) -> None:
        rng = rng if rng is not None else np.random.default_rng()
        gh, k = self.gates * hidden_size, 1.0 / np.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.params = {   # PyTorch's default: uniform(−1/√H, 1/√H)
            "W_ih": rng.uniform(-k, k, (gh, input_size)).astype(dtype),
            "W_hh": rng.uniform(-k, k, (gh, hidden_size)).astype(dtype),
            "b_ih": rng.uniform(-k, k, gh).astype(dtype),
            "b_hh": rng.uniform(-k, k, gh).astype(dtype),
        }
        self.grads: dict[str, Array] = {}

    def initial_state(self, n: int, dtype: type) -> State:
        return tuple(np.zeros((n, self.hidden_size), dtype=dtype) for _ in range(self.n_states))

    def step(self, xw: Array, state: State) -> tuple[State, tuple]:
        raise NotImplementedError

    def step_backward(self, dstate: State, cache: tuple) -> tuple[Array, State]:
        raise NotImplementedError

    def _hh(self, h: Array) -> Array:
        return h @ self.params["W_hh"].T + self.params["b_hh"]

    def _accumulate(self, dhw: Array, h_prev: Array) -> Array:
        self.grads["W_hh"] += dhw.T @ h_prev
        self.grads["b_hh"] += dhw.sum(axis=0)
        return dhw @ self.params["W_hh"]


class RNNCell(_Cell):
    """Vanilla (Elman) cell: ``h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``."""

    def step(self, xw: Array, state: State) -> tuple[State, tuple]:
        (h,) = state
        h_new = np.tanh(xw + self._hh(h))
        return (h_new,), (h, h_new)

    def step_backward(self, dstate: State, cache: tuple) -> tuple[Array, State]:
        h, h_new = cache
        da = dstate[0] * (1 - h_new**2)
        return da, (self._accumulate(da, h),)


class GRUCell(_Cell):
    """GRU (PyTorch's equations): ``r, z = σ(·)``, ``n = tanh(x_n + r ⊙ h_n)``, ``h' = (1−z) ⊙ n + z ⊙ h``."""

    gates = 3

    def step(self, xw: Array, state: State) -> tuple[State, tuple]:
        (h,) = state
        H = self.hidden_size
        hw = self._hh(h)
        r = sigmoid(xw[:, :H] + hw[:, :H])
        z = sigmoid(xw[:, H:2 * H] + hw[:, H:2 * H])
        hn = hw[:, 2 * H:]
        n = np.tanh(xw[:, 2 * H:] + r * hn)
        h_new = (1 - z) * n + z * h
        return (h_new,), (h, r, z, n, hn)

    def step_backward(self, dstate: State, cache: tuple) -> tuple[Array, State]:
        h, r, z, n, hn = cache
        dh_new = dstate[0]
        dn = dh_new * (1 - z) * (1 - n**2)
        dr = dn * hn * r * (1 - r)
        dz = dh_new * (h - n) * z * (1 - z)
        dxw = np.concatenate([dr, dz, dn], axis=1)
        dhw = np.concatenate([dr, dz, dn * r], axis=1)
        return dxw, (self._accumulate(dhw, h) + dh_new * z,)


class LSTMCell(_Cell):
    """LSTM (gates i, f, g, o as in PyTorch): ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``."""

    gates = 4
    n_states = 2

    def step(self, xw: Array, state: State) -> tuple[State, tuple]:
        h, c = state
        H = self.hidden_size
        a = xw + self._hh(h)
        i, f, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), sigmoid(a[:, 3 * H:])
        g = np.tanh(a[:, 2 * H:3 * H])
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        h_new = o * tc
        return (h_new, c_new), (h, c, i, f, g, o, tc)

    def step_backward(self, dstate: State, cache: tuple) -> tuple[Array, State]:
        h, c, i, f, g, o, tc = cache
        dh, dc = dstate
        dc = dc + dh * o * (1 - tc**2)
        da = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f),
                             dc * i * (1 - g**2), dh * tc * o * (1 - o)], axis=1)
        return da, (self._accumulate(da, h), dc * f)


class _Recurrent(Layer):
    """Run a cell over ``x (N, T, D)``; returns every hidden state ``(N, T, H)``.

    ``forward(x, state0)`` starts from ``state0`` (zeros if None) and leaves the final state in
    ``self.state``. ``backward(dhs, dstate_last)`` is backpropagation through time over the whole
    chunk; the gradient w.r.t. ``state0`` is left in ``self.dstate0``. Truncated BPTT = call
    ``forward`` on consecutive chunks, passing the previous chunk's ``state`` as ``state0``: the
    state carries information forward, but no gradient flows back past the chunk boundary.
    """

    cell_class: type[_Cell] = _Cell

    def __init__(self, input_size: int, hidden_size: int, rng: np.random.Generator | None = None,
                 dtype: type = np.float32) -> None:
        super().__init__()
        self.cell = self.cell_class(input_size, hidden_size, rng, dtype)
        self.params = self.cell.params
        self.hidden_size = hidden_size

    def forward(self, x: Array, training: bool = True, state0: State | None = None) -> Array:
        _check_input(self, x, 3, "(N, T, D)", last=self.params["W_ih"].shape[1])
        n, t, _ = x.shape
        p = self.params
        state = self.cell.initial_state(n, x.dtype) if state0 is None else tuple(state0)
        xw = x @ p["W_ih"].T + p["b_ih"]               # every time step's input projection at once
        hs = np.empty((n, t, self.hidden_size), dtype=x.dtype)
        self._caches = []
        for s in range(t):
            state, cache = self.cell.step(xw[:, s], state)
            self._caches.append(cache)
            hs[:, s] = state[0]
        self._x, self.state = x, state
        return hs

    def backward(self, dhs: Array, dstate_last: State | None = None) -> Array:
        n, t, _ = dhs.shape
        p = self.params
        self.cell.grads = {"W_hh": np.zeros_like(p["W_hh"]), "b_hh": np.zeros_like(p["b_hh"])}
        dstate = self.cell.initial_state(n, dhs.dtype) if dstate_last is None else tuple(dstate_last)
        dxw = np.empty((n, t, p["W_ih"].shape[0]), dtype=dhs.dtype)
        for s in reversed(range(t)):
            dstate = (dstate[0] + dhs[:, s], *dstate[1:])
            dxw[:, s], dstate = self.cell.step_backward(dstate, self._caches[s])
        self.dstate0 = dstate
        dxw2 = dxw.reshape(n * t, -1)
        self.grads = {"W_ih": dxw2.T @ self._x.reshape(n * t, -1), "W_hh": self.cell.grads["W_hh"],
                      "b_ih": dxw2.sum(axis=0), "b_hh": self.cell.grads["b_hh"]}
        return dxw @ p["W_ih"]


class RNN(_Recurrent):
    """Vanilla RNN layer (tanh), see :class:`RNNCell`."""

    cell_class = RNNCell


class GRU(_Recurrent):
    """GRU layer, see :class:`GRUCell`."""

    cell_class = GRUCell


class LSTM(_Recurrent):
    """LSTM layer, see :class:`LSTMCell`; ``state`` is ``(h, c)``."""

    cell_class = LSTMCell


# --------------------------------------------------------------------------- losses and regularization


def mse_loss(pred: Array, target: Array) -> tuple[float, Array]:
    """Mean squared error over all elements, and its gradient w.r.t. ``pred``."""
    diff = pred - target
    return float(np.mean(diff**2)), 2 * diff / diff.size


def binary_cross_entropy(logits: Array, target: Array) -> tuple[float, Array]:
    """Mean binary cross-entropy from logits: ``max(z,0) − z·y + log(1 + e^{−|z|})`` never overflows."""
    z, y = logits, target.astype(logits.dtype)
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(loss.mean()), (sigmoid(z) - y) / z.size


def softmax_cross_entropy(logits: Array, target: Array) -> tuple[float, Array]:
    """Mean categorical cross-entropy from logits ``(..., C)``; ``target`` integer labels ``(...)`` or
    probabilities ``(..., C)``. The gradient is ``(softmax − target) / n``."""
    c = logits.shape[-1]
    logp = log_softmax(logits).reshape(-1, c)
    n = logp.shape[0]
    y = one_hot(target.reshape(-1), c, logits.dtype) if target.shape != logits.shape else target.reshape(-1, c)
    loss = -float((y * logp).sum() / n)
    return loss, ((np.exp(logp) - y) / n).reshape(logits.shape)


def l2_penalty(params: Sequence[Param], lam: float) -> float:
    """Add ``λ·W`` to the gradient of every weight (names ending in ``W``, ``W_ih``, ``W_hh``; not biases)
    in place and return the penalty ``λ/2 · Σ‖W‖²`` to add to the loss. Call after ``backward``."""
    total = 0.0
    for name, value, grad in params:
        if name.split(".")[-1].startswith("W"):
            total += 0.5 * lam * float(np.sum(value.astype(np.float64) ** 2))
            grad += lam * value
    return total


def clip_grad_norm(params: Sequence[Param], max_norm: float) -> float:
    """Rescale all gradients in place so their global L2 norm is at most ``max_norm``; return the norm
    before clipping (same rule as ``torch.nn.utils.clip_grad_norm_``)."""
    norm = float(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for _, _, g in params)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for _, _, g in params:
            g *= coef
    return norm


def minibatches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Array]:
    """Index arrays covering ``range(n)`` in batches (shuffled if ``rng`` is given).
    ``batch_size = n`` gives batch gradient descent, ``1`` stochastic, anything between mini-batch."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


# --------------------------------------------------------------------------- optimizers


class SGD:
    """Plain gradient descent ``θ ← θ − η·g``. Fed the full data set per step it is batch GD."""

    def __init__(self, lr: float = 0.1) -> None:
        self.lr = lr

    def step(self, params: Sequence[Param]) -> None:
        """Update every parameter in place."""
        for _, value, grad in params:
            value -= self.lr * grad


class Momentum(SGD):
    """Heavy-ball momentum (PyTorch's form): ``v ← β·v + g``, ``θ ← θ − η·v``."""

    def __init__(self, lr: float = 0.01, beta: float = 0.9) -> None:
        super().__init__(lr)
        self.beta, self.velocity = beta, {}

    def step(self, params: Sequence[Param]) -> None:
        for k, (_, value, grad) in enumerate(params):
            v = self.velocity.get(k)
            v = grad.copy() if v is None else self.beta * v + grad
            self.velocity[k] = v
            value -= self.lr * v


class Adam(SGD):
    """Adam: bias-corrected running means of ``g`` and ``g²``; ``θ ← θ − η·m̂/(√v̂ + ε)``."""

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m: dict[int, Array] = {}
        self.v: dict[int, Array] = {}
        self.t = 0

    def step(self, params: Sequence[Param]) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for k, (_, value, grad) in enumerate(params):
            m = self.m[k] = b1 * self.m.get(k, 0) + (1 - b1) * grad
            v = self.v[k] = b2 * self.v.get(k, 0) + (1 - b2) * grad * grad
            m_hat, v_hat = m / (1 - b1**self.t), v / (1 - b2**self.t)
            value -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(value.dtype)


# --------------------------------------------------------------------------- gradient checking


def relative_error(a: Array, b: Array) -> float:
    """``‖a − b‖ / (‖a‖ + ‖b‖)`` (0 when both are zero)."""
    denom = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b)) / denom


def numerical_gradient(f: Callable[[], float], x: Array, eps: float = 1e-6,
                       indices: Sequence[tuple[int, ...]] | None = None) -> Array:
    """Central differences ``(f(x+ε) − f(x−ε)) / 2ε`` for each entry of ``x`` (perturbed in place and
    restored). With ``indices`` only those entries are computed; the others stay 0."""
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in indices if indices is not None else np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        plus = f()
        x[idx] = old - eps
        minus = f()
        x[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


@dataclass
class GradcheckResult:
    """Relative error of each checked array, and whether all are below ``tol``."""

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6

    @property
    def passed(self) -> bool:
        return all(e < self.tol for e in self.errors.values())

    def __str__(self) -> str:
        lines = [f"  {k:<12s} relative error {e:.2e}" for k, e in self.errors.items()]
        return "\n".join(lines + [f"gradient check: {'PASS' if self.passed else 'FAIL'} (tol {self.tol:g})"])


def gradcheck(f: Callable[[], float], arrays: dict[str, Array], grads: dict[str, Array], eps: float = 1e-6,
              tol: float = 1e-6, max_entries: int | None = None,
              rng: np.random.Generator | None = None) -> GradcheckResult:
    """Compare analytic ``grads`` with central differences of the scalar ``f()`` w.r.t. each array.

    Use float64 arrays. ``max_entries`` checks a random sample of entries per array (faster for big
    layers); the relative error is then computed on those entries only.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    result = GradcheckResult(tol=tol)
    for name, x in arrays.items():
        idx = None
        if max_entries is not None and x.size > max_entries:
            flat = rng.choice(x.size, size=max_entries, replace=False)
            idx = [np.unravel_index(i, x.shape) for i in flat]
        num = numerical_gradient(f, x, eps, idx)
        ana = np.asarray(grads[name], dtype=np.float64)
        if idx is not None:
            sel = tuple(np.array(i) for i in zip(*idx, strict=True))
            num, ana = num[sel], ana[sel]
        result.errors[name] = relative_error(ana, num)
    return result


def layer_gradcheck(layer: Layer, x: Array, rng: np.random.Generator | None = None, eps: float = 1e-6,
                    tol: float = 1e-6, max_entries: int | None = None) -> GradcheckResult:
    """Gradient check of one layer: loss ``Σ forward(x) ⊙ R`` for a fixed random ``R`` (so every output
    matters), checked w.r.t. the input and every parameter. The layer must be deterministic
    (dropout off) and float64."""
    rng = rng if rng is not None else np.random.default_rng(0)
    r = rng.standard_normal(layer.forward(x, training=False).shape)

    def f() -> float:
        return float(np.sum(layer.forward(x, training=False) * r))

    f()
    dx = layer.backward(r)
    params = {name: value for name, value, _ in layer.parameters()}
    grads = {name: grad.copy() for name, _, grad in layer.parameters()}
    return gradcheck(f, {"input": x, **params}, {"input": dx, **grads}, eps, tol, max_entries, rng)
