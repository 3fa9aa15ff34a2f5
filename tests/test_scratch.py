"""dl_utils.scratch against PyTorch autograd: every forward output and gradient, float64.

Each test builds the NumPy layer, copies its parameters into the equivalent torch computation,
pushes the same random upstream gradient through both, and compares with a relative error
``‖a − b‖ / (‖a‖ + ‖b‖) < 1e-6``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dl_utils import scratch as S

TOL = 1e-6
TORCH_NAME = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}


def rel(a, b) -> float:
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return S.relative_error(a, b)


def t(a: np.ndarray, grad: bool = True) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def check_layer(layer: S.Layer, x: np.ndarray, torch_fn, torch_params: dict[str, torch.Tensor]) -> None:
    """Forward and backward of ``layer`` vs ``torch_fn(x_t)``; torch_params maps our names to leaf tensors."""
    rng = np.random.default_rng(1)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    xt = t(x)
    out_t = torch_fn(xt)
    out_t.backward(torch.tensor(dout))
    assert rel(out, out_t) < TOL
    assert rel(dx, xt.grad) < TOL
    for name, p in torch_params.items():
        assert rel(layer.grads[name], p.grad) < TOL, name


@pytest.fixture(autouse=True)
def _torch_float64():
    """float64 torch defaults for this file only (restored afterwards, so other test files are unaffected)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# --------------------------------------------------------------------------- dense and activations


def test_dense_3d_input(rng):
    layer = S.Dense(5, 3, init="xavier", rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(3)
    W, b = t(layer.params["W"]), t(layer.params["b"])
    check_layer(layer, rng.standard_normal((4, 2, 5)), lambda x: x @ W + b, {"W": W, "b": b})


@pytest.mark.parametrize("layer,fn", [
    (S.Linear(), lambda x: x), (S.ReLU(), torch.relu), (S.Sigmoid(), torch.sigmoid),
    (S.Tanh(), torch.tanh), (S.Softmax(), lambda x: torch.softmax(x, -1)),
])
def test_activations(rng, layer, fn):
    x = rng.standard_normal((6, 7)) * 3
    check_layer(layer, x, fn, {})


def test_sigmoid_and_softmax_are_stable():
    x = np.array([[-1000.0, 0.0, 1000.0]])
    assert np.all(np.isfinite(S.sigmoid(x))) and np.allclose(S.sigmoid(x), [[0, 0.5, 1]])
    assert np.allclose(S.softmax(x), [[0, 0, 1]])


def test_sequential_mlp_and_parameters(rng):
    model = S.Sequential([S.Dense(4, 6, rng=rng, dtype=np.float64), S.Tanh(),
                          S.Dense(6, 2, init="random", scale=0.5, rng=rng, dtype=np.float64)])
    W1, b1, W2, b2 = (t(v) for _, v, _ in model.parameters())
    check_layer(model, rng.standard_normal((5, 4)), lambda x: torch.tanh(x @ W1 + b1) @ W2 + b2, {})
    got = [g for _, _, g in model.parameters()]
    for g, p in zip(got, (W1, b1, W2, b2), strict=True):
        assert rel(g, p.grad) < TOL
    assert [n for n, _, _ in model.parameters()] == ["0.W", "0.b", "2.W", "2.b"]


def test_initializers_have_the_right_scale():
    rng = np.random.default_rng(0)
    assert abs(S.init_weights((400, 600), 400, 600, "he", rng).std() - np.sqrt(2 / 400)) < 2e-3
    assert abs(S.init_weights((400, 600), 400, 600, "xavier", rng).std() - np.sqrt(2 / 1000)) < 2e-3
    assert abs(S.init_weights((400, 600), 400, 600, "random", rng, scale=0.01).std() - 0.01) < 2e-4
    with pytest.raises(ValueError):
        S.init_weights((2, 2), 2, 2, "bogus")


def test_dropout_is_inverted_and_off_in_eval(rng):
    layer = S.Dropout(0.25, rng=rng)
    x = np.ones((200, 500))
    y = layer.forward(x)
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs(y.mean() - 1) < 0.01 and abs((y == 0).mean() - 0.25) < 0.01
    assert np.array_equal(layer.backward(x), y)  # same mask, same scale
    assert np.array_equal(layer.forward(x, training=False), x)


# --------------------------------------------------------------------------- losses, L2, clipping


def test_losses_match_torch(rng):
    z = rng.standard_normal((8, 5)) * 4
    zt = t(z)
    # MSE
    y = rng.standard_normal((8, 5))
    loss, g = S.mse_loss(z, y)
    lt = F.mse_loss(zt, torch.tensor(y))
    lt.backward()
    assert rel(loss, lt) < TOL and rel(g, zt.grad) < TOL
    # binary CE from logits, with extreme logits
    zb = np.concatenate([z, [[800.0, -800.0, 30.0, -30.0, 0.0]]])
    yb = (rng.random(zb.shape) > 0.5).astype(float)
    zbt = t(zb)
    loss, g = S.binary_cross_entropy(zb, yb)
    lt = F.binary_cross_entropy_with_logits(zbt, torch.tensor(yb))
    lt.backward()
    assert np.isfinite(loss) and rel(loss, lt) < TOL and rel(g, zbt.grad) < TOL
    # categorical CE: integer labels on (N, T, C) logits, and soft targets
    z3 = rng.standard_normal((3, 4, 6)) * 10
    labels = rng.integers(0, 6, (3, 4))
    z3t = t(z3)
    loss, g = S.softmax_cross_entropy(z3, labels)
    lt = F.cross_entropy(z3t.reshape(-1, 6), torch.tensor(labels.reshape(-1)))
    lt.backward()
    assert rel(loss, lt) < TOL and rel(g, z3t.grad) < TOL
    probs = S.softmax(rng.standard_normal((8, 5)))
    zt.grad = None
    loss, g = S.softmax_cross_entropy(z, probs)
    lt = F.cross_entropy(zt, torch.tensor(probs))
    lt.backward()
    assert rel(loss, lt) < TOL and rel(g, zt.grad) < TOL


def test_softmax_cross_entropy_is_stable():
    loss, g = S.softmax_cross_entropy(np.array([[1e4, 0.0, -1e4]]), np.array([2]))
    assert np.isfinite(loss) and abs(loss - 2e4) < 1e-6 and np.all(np.isfinite(g))


def test_l2_penalty_matches_autograd(rng):
    model = S.Sequential([S.Dense(3, 4, rng=rng, dtype=np.float64), S.ReLU(), S.Dense(4, 2, rng=rng, dtype=np.float64)])
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    loss, d = S.softmax_cross_entropy(model.forward(x), y)
    model.backward(d)
    loss += S.l2_penalty(model.parameters(), lam=0.3)
    W1, b1, W2, b2 = (t(v) for _, v, _ in model.parameters())
    lt = F.cross_entropy(torch.relu(t(x, False) @ W1 + b1) @ W2 + b2, torch.tensor(y)) \
        + 0.15 * (W1.pow(2).sum() + W2.pow(2).sum())
    lt.backward()
    assert rel(loss, lt) < TOL
    for (_, _, g), p in zip(model.parameters(), (W1, b1, W2, b2), strict=True):
        assert rel(g, p.grad) < TOL


def test_clip_grad_norm_matches_torch(rng):
    grads = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(7)]
    params = [("a", np.zeros(1), grads[0]), ("b", np.zeros(1), grads[1])]
    tensors = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for tt, g in zip(tensors, grads, strict=True):
        tt.grad = torch.tensor(g.copy())
    norm = S.clip_grad_norm(params, 1.5)
    norm_t = torch.nn.utils.clip_grad_norm_(tensors, 1.5)
    assert rel(norm, norm_t) < TOL
    for g, tt in zip(grads, tensors, strict=True):
        assert rel(g, tt.grad) < TOL
    assert S.clip_grad_norm(params, 100.0) < 100  # below the threshold: untouched


# --------------------------------------------------------------------------- optimizers


@pytest.mark.parametrize("ours,theirs", [
    (lambda: S.SGD(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda: S.Momentum(0.05, 0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (lambda: S.Adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
])
def test_optimizers_match_torch(rng, ours, theirs):
    A, b = rng.standard_normal((6, 4)), rng.standard_normal(6)
    w0, c0 = rng.standard_normal(4), rng.standard_normal(1)
    w, c = w0.copy(), c0.copy()
    wt, ct = t(w0), t(c0)
    opt, opt_t = ours(), theirs([wt, ct])
    for _ in range(5):
        r = A @ w + c - b                       # loss = ½‖A w + c − b‖²
        opt.step([("w", w, A.T @ r), ("c", c, r.sum(keepdims=True))])
        opt_t.zero_grad()
        (0.5 * (t(A, False) @ wt + ct - t(b, False)).pow(2).sum()).backward()
        opt_t.step()
    assert rel(w, wt) < TOL and rel(c, ct) < TOL


def test_minibatches_cover_everything_once():
    batches = list(S.minibatches(10, 4, np.random.default_rng(0)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert len(list(S.minibatches(10, 10))) == 1  # batch gradient descent


# --------------------------------------------------------------------------- convolution and pooling


@pytest.mark.parametrize("shape,c_out,kernel,stride,padding", [
    ((2, 3, 8, 8), 4, 3, 1, 1),        # "same" convolution
    ((2, 2, 7, 9), 3, 3, 2, 1),        # stride 2, odd sizes
    ((1, 3, 10, 7), 2, (4, 2), (3, 2), (2, 0)),   # rectangular kernel, uneven stride and padding
    ((3, 1, 5, 5), 5, 5, 1, 0),        # kernel = image
    ((2, 4, 6, 6), 3, 1, 2, 0),        # 1×1 projection with stride (ResNet shortcut)
])
def test_conv2d_matches_torch(rng, shape, c_out, kernel, stride, padding):
    layer = S.Conv2D(shape[1], c_out, kernel, stride, padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(c_out)
    W, b = t(layer.params["W"]), t(layer.params["b"])
    check_layer(layer, rng.standard_normal(shape),
                lambda x: F.conv2d(x, W, b, stride=stride, padding=padding), {"W": W, "b": b})


@pytest.mark.parametrize("shape,kernel,stride", [
    ((2, 3, 8, 8), 2, None), ((2, 2, 7, 9), 3, 2), ((1, 2, 9, 6), (3, 2), (2, 1)), ((2, 1, 5, 5), 2, 1),
])
def test_pooling_matches_torch(rng, shape, kernel, stride):
    x = rng.standard_normal(shape)
    check_layer(S.MaxPool2D(kernel, stride), x, lambda v: F.max_pool2d(v, kernel, stride), {})
    check_layer(S.AvgPool2D(kernel, stride), x, lambda v: F.avg_pool2d(v, kernel, stride), {})


def test_small_cnn_and_residual_block_match_torch(rng):
    kw = dict(rng=rng, dtype=np.float64)
    block = S.Residual(S.Sequential([S.Conv2D(3, 4, 3, 2, 1, **kw), S.ReLU(), S.Conv2D(4, 4, 3, 1, 1, **kw)]),
                       shortcut=S.Conv2D(3, 4, 1, 2, 0, **kw))
    model = S.Sequential([S.Conv2D(2, 3, 3, 1, 1, **kw), S.ReLU(), block, S.ReLU(), S.AvgPool2D(2),
                          S.Flatten(), S.Dense(4 * 2 * 2, 3, **kw)])
    names = [n for n, _, _ in model.parameters()]
    tp = {n: t(v) for n, v, _ in model.parameters()}

    def torch_model(x):
        h = torch.relu(F.conv2d(x, tp["0.W"], tp["0.b"], padding=1))
        m = F.conv2d(torch.relu(F.conv2d(h, tp["2.main.0.W"], tp["2.main.0.b"], stride=2, padding=1)),
                     tp["2.main.2.W"], tp["2.main.2.b"], padding=1)
        h = torch.relu(m + F.conv2d(h, tp["2.shortcut.W"], tp["2.shortcut.b"], stride=2))
        return F.avg_pool2d(h, 2).flatten(1) @ tp["6.W"] + tp["6.b"]

    check_layer(model, rng.standard_normal((2, 2, 8, 8)), torch_model, {})
    for n, _, g in model.parameters():
        assert rel(g, tp[n].grad) < TOL, n
    assert len(names) == 10


def test_identity_residual_passes_gradient_twice(rng):
    block = S.Residual(S.Linear())
    x = rng.standard_normal((2, 3))
    assert np.allclose(block.forward(x), 2 * x) and np.allclose(block.backward(np.ones_like(x)), 2)


# --------------------------------------------------------------------------- recurrent layers


def _torch_rnn(kind: str, layer: S.Layer):
    d, h = layer.params["W_ih"].shape[1], layer.hidden_size
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](d, h, batch_first=True)
    with torch.no_grad():
        for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
            getattr(mod, TORCH_NAME[name]).copy_(torch.tensor(layer.params[name]))
    return mod


@pytest.mark.parametrize("kind,cls", [("rnn", S.RNN), ("gru", S.GRU), ("lstm", S.LSTM)])
def test_recurrent_full_bptt_matches_torch(rng, kind, cls):
    n, T, d, h = 3, 6, 4, 5
    layer = cls(d, h, rng=rng, dtype=np.float64)
    mod = _torch_rnn(kind, layer)
    x = rng.standard_normal((n, T, d))
    state0 = tuple(rng.standard_normal((n, h)) * 0.5 for _ in range(2 if kind == "lstm" else 1))
    hs = layer.forward(x, state0=state0)
    dhs = rng.standard_normal(hs.shape)
    dlast = tuple(rng.standard_normal((n, h)) for _ in state0)   # a loss on the final state too
    dx = layer.backward(dhs, dlast)

    xt = t(x)
    s0 = [t(s[None]) for s in state0]
    out, last = mod(xt, tuple(s0) if kind == "lstm" else s0[0])
    last = last if kind == "lstm" else (last,)
    loss = (out * torch.tensor(dhs)).sum() + sum((s[0] * torch.tensor(d)).sum() for s, d in zip(last, dlast, strict=True))
    loss.backward()
    assert rel(hs, out) < TOL
    for ours, theirs in zip(layer.state, last, strict=True):
        assert rel(ours, theirs[0]) < TOL
    assert rel(dx, xt.grad) < TOL
    for ours, theirs in zip(layer.dstate0, s0, strict=True):
        assert rel(ours, theirs.grad[0]) < TOL
    for name in ("W_ih", "W_hh", "b_ih", "b_hh"):
        assert rel(layer.grads[name], getattr(mod, TORCH_NAME[name]).grad) < TOL, name


@pytest.mark.parametrize("kind,cls", [("gru", S.GRU), ("lstm", S.LSTM)])
def test_truncated_bptt_matches_torch_detach(rng, kind, cls):
    """Two chunks; the state is carried but detached between them (truncated BPTT)."""
    n, T, d, h = 2, 8, 3, 4
    layer = cls(d, h, rng=rng, dtype=np.float64)
    mod = _torch_rnn(kind, layer)
    x = rng.standard_normal((n, T, d))
    dhs = rng.standard_normal((n, T, h))
    grads = {k: 0.0 for k in layer.params}
    state = None
    for chunk in (slice(0, 5), slice(5, 8)):
        layer.forward(x[:, chunk], state0=state)
        layer.backward(dhs[:, chunk])
        state = layer.state
        grads = {k: grads[k] + layer.grads[k] for k in grads}

    s, loss = None, 0.0
    for chunk in (slice(0, 5), slice(5, 8)):
        out, s = mod(torch.tensor(x[:, chunk]), s)
        s = tuple(v.detach() for v in s) if kind == "lstm" else s.detach()
        loss = loss + (out * torch.tensor(dhs[:, chunk])).sum()
    loss.backward()
    for name in grads:
        assert rel(grads[name], getattr(mod, TORCH_NAME[name]).grad) < TOL, name


# --------------------------------------------------------------------------- gradcheck itself


@pytest.mark.parametrize("make,shape", [
    (lambda r: S.Dense(4, 3, rng=r, dtype=np.float64), (3, 4)),
    (lambda r: S.Conv2D(2, 2, 3, 2, 1, rng=r, dtype=np.float64), (2, 2, 5, 6)),
    (lambda r: S.MaxPool2D(2), (1, 2, 4, 4)),
    (lambda r: S.LSTM(3, 2, rng=r, dtype=np.float64), (2, 4, 3)),
])
def test_gradcheck_passes_correct_layers(rng, make, shape):
    result = S.layer_gradcheck(make(rng), rng.standard_normal(shape), rng=rng)
    assert result.passed, str(result)
    assert "PASS" in str(result)


class BuggyTanh(S.Tanh):
    """A planted bug: forgets the square in 1 − tanh²."""

    def backward(self, dout):
        return dout * (1 - self._y)


class BuggyConv(S.Conv2D):
    """A planted bug: the bias gradient is averaged instead of summed."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = self.grads["b"] / dout.shape[0]
        return dx


def test_gradcheck_catches_planted_bugs(rng):
    bad = S.layer_gradcheck(BuggyTanh(), rng.standard_normal((4, 5)), rng=rng)
    assert not bad.passed and bad.errors["input"] > 1e-3 and "FAIL" in str(bad)
    bad = S.layer_gradcheck(BuggyConv(2, 3, 3, 1, 1, rng=rng, dtype=np.float64), rng.standard_normal((3, 2, 4, 4)),
                            rng=rng)
    assert not bad.passed and bad.errors["b"] > 1e-3 and bad.errors["W"] < 1e-6


def test_gradcheck_sampled_entries(rng):
    layer = S.Dense(30, 20, rng=rng, dtype=np.float64)
    result = S.layer_gradcheck(layer, rng.standard_normal((5, 30)), rng=rng, max_entries=25)
    assert result.passed and set(result.errors) == {"input", "W", "b"}


def test_module_imports_only_numpy():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(S))
    roots = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= {"numpy", "__future__", "collections", "dataclasses"}, roots


@pytest.mark.parametrize("layer,x,expected", [
    (lambda: S.Dense(4, 3), np.zeros((2, 5)), "Dense expects input (..., n_in) with 4"),
    (lambda: S.Conv2D(3, 4, 3), np.zeros((2, 1, 8, 8)), "Conv2D expects input (N, C, H, W) with 3 at axis 1"),
    (lambda: S.Conv2D(1, 4, 3), np.zeros((2, 8, 8)), "got shape (2, 8, 8)"),
    (lambda: S.MaxPool2D(), np.zeros((8, 8)), "MaxPool2D expects input (N, C, H, W)"),
    (lambda: S.AvgPool2D(), np.zeros((8, 8)), "AvgPool2D expects input (N, C, H, W)"),
    (lambda: S.GRU(5, 8), np.zeros((2, 7, 3)), "GRU expects input (N, T, D) with 5"),
])
def test_wrong_input_shapes_get_a_clear_error(layer, x, expected):
    with pytest.raises(ValueError) as err:
        layer().forward(x)
    assert expected in str(err.value)
