"""Character-level text helpers shared by the sequence notebooks (05 NumPy LSTM, 20 Keras LSTM,
21 PyTorch Transformer): a vocabulary, a contiguous train/validation/test split, n-gram baselines,
training and evaluation windows, and temperature sampling.

    vocab = CharVocab.fit(full_text)                      # sorted symbols; id = position
    train, val, test = contiguous_split(vocab.encode(full_text), val_fraction=0.1, test_fraction=0.1)
    ngram_cross_entropy(train, test, order=2, vocab_size=vocab.size)   # bigram baseline, nats/char
    ids = generate(next_scores, vocab.encode("ROMEO:\\n"), 200, [0.5, 1.0], rng)   # one row per temperature

NumPy only: importing this module never imports PyTorch or TensorFlow (notebook 05 is NumPy, and
in notebook 20 importing torch after TensorFlow can crash the kernel). Framework models enter
:func:`generate` through a plain callable that the notebook writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["CharVocab", "apply_temperature", "contiguous_split", "generate", "ngram_cross_entropy",
           "non_overlapping_windows", "random_windows", "sample_with_temperature"]


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

def _code_points(s: str) -> np.ndarray:
    """The Unicode code points of ``s`` as a uint32 array (vectorised; no Python loop per character)."""
    return np.frombuffer(s.encode("utf-32-le"), dtype=np.uint32)


@dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: ``chars[i]`` is the symbol with id ``i``.

    Build it with :meth:`fit` (the sorted set of symbols of a text, so the same text always gives
    the same ids). Characters outside the vocabulary raise a ``ValueError`` that names them, unless
    the vocabulary has an ``unknown`` symbol, to which they are then mapped.
    """

    chars: str
    unknown: str | None = None
    _lookup: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharVocab.chars must not repeat a symbol")
        if not self.chars:
            raise ValueError("CharVocab needs at least one symbol")
        if self.unknown is not None and (len(self.unknown) != 1 or self.unknown not in self.chars):
            raise ValueError(f"unknown symbol {self.unknown!r} must be one character of the vocabulary")
        points = _code_points(self.chars)
        lookup = np.full(int(points.max()) + 1, -1, dtype=np.int64)
        lookup[points] = np.arange(len(self.chars))
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def fit(cls, text: str | Iterable[str], *, unknown: str | None = None) -> CharVocab:
        """The sorted set of characters of ``text`` (a string or several). ``unknown``: a symbol that
        stands for any character not seen here (added to the vocabulary if ``text`` lacks it)."""
        texts = [text] if isinstance(text, str) else list(text)
        symbols = set().union(*map(set, texts)) if texts else set()
        if unknown is not None:
            symbols.add(unknown)
        return cls("".join(sorted(symbols)), unknown=unknown)

    @property
    def size(self) -> int:
        """Number of symbols (the model's input and output size)."""
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return isinstance(char, str) and len(char) == 1 and char in self.chars

    def encode(self, s: str, dtype: npt.DTypeLike = np.int64) -> np.ndarray:
        """The ids of the characters of ``s`` as a 1-D array of ``dtype`` (int32 for Keras, int64
        for PyTorch embeddings)."""
        points = _code_points(s)
        known = points < len(self._lookup)
        ids = np.full(len(points), -1, dtype=np.int64)
        ids[known] = self._lookup[points[known]]
        missing = ids < 0
        if missing.any():
            if self.unknown is None:
                bad = sorted(set(np.asarray(list(s))[missing].tolist()))
                raise ValueError(f"{int(missing.sum())} character(s) not in the vocabulary: "
                                 f"{''.join(bad)[:40]!r}; fit the vocabulary on this text, or give it an "
                                 "`unknown` symbol")
            ids[missing] = self.chars.index(self.unknown)
        return ids.astype(dtype, copy=False)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text of a sequence of ids (any integer array or iterable)."""
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).astype(np.int64).ravel()
        if arr.size and (arr.min() < 0 or arr.max() >= len(self.chars)):
            raise ValueError(f"ids must lie in [0, {len(self.chars)}); got {arr.min()} … {arr.max()}")
        return "".join(self.chars[i] for i in arr.tolist())


# ---------------------------------------------------------------------------------------------
# Splits, baselines and windows
# ---------------------------------------------------------------------------------------------

def contiguous_split(ids: np.ndarray, val_fraction: float, test_fraction: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split a sequence by position into train (the start), validation (the block before the test
    split) and test (the end): ``int(n * test_fraction)`` items at the end are test, the
    ``int(n * val_fraction)`` before them validation, the rest train. No window of one split can
    overlap another, and the same fractions give the same split in every notebook."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"fractions must be in [0, 1) with a non-empty train split; got "
                         f"val_fraction={val_fraction}, test_fraction={test_fraction}")
    n = len(ids)
    n_test, n_val = int(n * test_fraction), int(n * val_fraction)
    train_end, val_end = n - n_val - n_test, n - n_test
    return ids[:train_end], ids[train_end:val_end], ids[val_end:]


def ngram_cross_entropy(train_ids: np.ndarray, eval_ids: np.ndarray, order: int, vocab_size: int,
                        smoothing: float = 1.0) -> float:
    """Cross-entropy (nats per character) of a count-based model fitted on ``train_ids``.

    ``order=1``: unigram (character frequencies, no context); ``order=2``: bigram (the previous
    character only). Counts get ``smoothing`` added (add-one by default), so no probability is zero.
    Both orders score the same characters, ``eval_ids[1:]`` (each character that has a predecessor):
    pass the span a next-character model predicts, e.g. ``ids[: n_windows * seq_len + 1]``.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (unigram) or 2 (bigram), got {order}")
    if len(eval_ids) < 2:
        raise ValueError("eval_ids needs at least two characters")
    train_ids, eval_ids = np.asarray(train_ids), np.asarray(eval_ids)
    if order == 1:
        p = np.bincount(train_ids, minlength=vocab_size) + smoothing
        return float(-np.log(p[eval_ids[1:]] / p.sum()).mean())
    table = np.full((vocab_size, vocab_size), float(smoothing))
    np.add.at(table, (train_ids[:-1], train_ids[1:]), 1.0)
    table /= table.sum(axis=1, keepdims=True)
    return float(-np.log(table[eval_ids[:-1], eval_ids[1:]]).mean())


def non_overlapping_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets of consecutive, non-overlapping windows, each ``(n, seq_len)``
    with ``n = (len(ids) - 1) // seq_len``: the evaluation protocol of notebooks 20 and 21. The
    targets are exactly ``ids[1 : n * seq_len + 1]``."""
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"{len(ids)} ids cannot fill one window of {seq_len} (+1) characters")
    return ids[: n * seq_len].reshape(n, seq_len), ids[1: n * seq_len + 1].reshape(n, seq_len)


def random_windows(ids: np.ndarray, seq_len: int, batch_size: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A training batch: ``batch_size`` windows of ``seq_len + 1`` characters starting at uniformly
    random positions, as inputs (the first ``seq_len``) and targets (the same text shifted by one).
    Sampling starts at random samples every sliding window without storing them."""
    if len(ids) < seq_len + 2:
        raise ValueError(f"{len(ids)} ids are too few for windows of {seq_len} + 1 characters")
    starts = rng.integers(0, len(ids) - seq_len - 1, batch_size)
    windows = ids[starts[:, None] + np.arange(seq_len + 1)]
    return windows[:, :-1], windows[:, 1:]


# ---------------------------------------------------------------------------------------------
# Temperature sampling
# ---------------------------------------------------------------------------------------------

def _temperatures(temperature: float | Sequence[float] | np.ndarray, n_rows: int) -> np.ndarray:
    t = np.asarray(temperature, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and len(t) != n_rows):
        raise ValueError(f"temperature must be one number or one per row ({n_rows}); got shape {t.shape}")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"temperature must be finite and >= 0 (0 = always the most likely); got {temperature}")
    return np.broadcast_to(t, (n_rows,))


def apply_temperature(scores: np.ndarray, temperature: float | Sequence[float], *, logits: bool = False
                      ) -> np.ndarray:
    """The distribution sampled at ``temperature``: ``softmax(logits / T)``, or for probabilities
    ``p ** (1 / T)`` renormalised (the same thing). ``T = 1`` leaves it unchanged, ``T < 1``
    sharpens it, ``T > 1`` flattens it and ``T = 0`` puts all mass on the most likely symbol.

    ``scores``: ``(V,)`` or ``(n, V)``; ``temperature``: one number or one per row.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"scores must have shape (V,) or (n, V); got {arr.shape}")
    rows = np.atleast_2d(arr)
    t = _temperatures(temperature, len(rows))
    if logits:
        if np.isnan(rows).any() or np.isposinf(rows).any():
            raise ValueError("logits must not be NaN or +inf")
        z = rows
    else:
        if np.isnan(rows).any() or (rows < 0).any() or not (rows.sum(axis=1) > 0).all():
            raise ValueError("probabilities must be >= 0 with a positive sum in every row "
                             "(pass logits=True for unnormalised log-scores)")
        with np.errstate(divide="ignore"):
            z = np.log(rows)
    out = np.zeros_like(z)
    greedy = t == 0
    if greedy.any():
        out[greedy, z[greedy].argmax(axis=1)] = 1.0
    if (~greedy).any():
        zt = z[~greedy] / t[~greedy, None]
        zt = zt - zt.max(axis=1, keepdims=True)
        e = np.exp(zt)
        out[~greedy] = e / e.sum(axis=1, keepdims=True)
    return out if arr.ndim == 2 else out[0]


def sample_with_temperature(scores: np.ndarray, temperature: float | Sequence[float], rng: np.random.Generator,
                            *, logits: bool = False) -> int | np.ndarray:
    """Draw one symbol id from each distribution in ``scores`` at ``temperature``.

    ``scores``: probabilities (default) or ``logits=True`` unnormalised log-scores, shape ``(V,)``
    (returns an ``int``) or ``(n, V)`` (returns ``n`` ids, one per row; ``temperature`` may then be
    one number per row). ``T = 0`` is greedy (argmax, no randomness used for that row). Raises
    ``ValueError`` for a negative, NaN or infinite temperature.
    """
    p = np.atleast_2d(apply_temperature(scores, temperature, logits=logits))
    cdf = np.cumsum(p, axis=1)
    # inverse CDF: the first id whose cumulative probability exceeds u (zero-probability ids are never drawn)
    u = rng.random(len(p)) * cdf[:, -1]
    ids = np.minimum((cdf <= u[:, None]).sum(axis=1), p.shape[1] - 1)
    return int(ids[0]) if np.ndim(scores) == 1 else ids.astype(np.int64)


def generate(next_scores: Callable[[np.ndarray], np.ndarray], prompt_ids: Sequence[int] | np.ndarray,
             n_chars: int, temperatures: Sequence[float], rng: np.random.Generator, *,
             logits: bool = False) -> np.ndarray:
    """Continue one prompt ``n_chars`` times, one row per temperature, all rows in one batch.

    ``next_scores(history)`` is the model, written in the notebook's framework: it receives the ids
    so far, an int64 array ``(rows, t)`` (the prompt, then the prompt plus what was sampled), and
    returns the next character's probabilities (or logits, with ``logits=True``), ``(rows, V)``.
    A recurrent model may carry its state between calls and read only ``history[:, -1:]`` after
    the first call; a Transformer re-reads its context window ``history[:, -context:]``.
    Returns the sampled ids, ``(rows, n_chars)`` (without the prompt).
    """
    prompt = np.asarray(prompt_ids, dtype=np.int64).ravel()
    if prompt.size == 0:
        raise ValueError("the prompt must contain at least one character")
    temps = _temperatures(list(temperatures), len(temperatures))
    history = np.tile(prompt, (len(temps), 1))
    out = np.empty((len(temps), n_chars), dtype=np.int64)
    for i in range(n_chars):
        scores = np.asarray(next_scores(history))
        out[:, i] = sample_with_temperature(scores.reshape(len(temps), -1), temps, rng, logits=logits)
        history = np.concatenate([history, out[:, i:i + 1]], axis=1)
    return out
