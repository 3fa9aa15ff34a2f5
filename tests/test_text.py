"""dl_utils.text: the vocabulary, split, baselines, windows and temperature sampling that notebooks
05, 20 and 21 share. Fast and offline (the vocabulary test on Tiny Shakespeare uses the mirror)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dl_utils import data
from dl_utils.text import (
    CharVocab,
    apply_temperature,
    contiguous_split,
    generate,
    ngram_cross_entropy,
    non_overlapping_windows,
    random_windows,
    sample_with_temperature,
)

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n"


def test_vocab_is_the_sorted_symbol_set_and_round_trips():
    vocab = CharVocab.fit(TEXT)
    assert vocab.chars == "".join(sorted(set(TEXT)))
    assert vocab.size == len(vocab) == len(set(TEXT))
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert vocab.decode(ids) == TEXT
    assert vocab.decode(ids.tolist()) == TEXT           # lists and arrays alike
    assert vocab.encode("Fe", dtype=np.int32).dtype == np.int32
    assert vocab.encode("").shape == (0,) and vocab.decode([]) == ""
    assert vocab.encode("\n")[0] == 0                    # newline sorts first
    assert "F" in vocab and "Z" not in vocab


def test_vocab_of_tiny_shakespeare(mirror_cache):
    text = data.load_tiny_shakespeare()
    vocab = CharVocab.fit(text)
    assert vocab.size == 65
    ids = vocab.encode(text)
    assert vocab.decode(ids[:1000]) == text[:1000]
    assert np.array_equal(ids[:5000], [vocab.chars.index(c) for c in text[:5000]])


def test_unknown_characters_raise_or_map_to_the_unknown_symbol():
    vocab = CharVocab.fit("abc")
    with pytest.raises(ValueError, match="not in the vocabulary: 'xé'"):
        vocab.encode("abxé")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("\U0001F600")                      # beyond the lookup table
    with_unk = CharVocab.fit("abc", unknown="?")
    assert with_unk.chars == "?abc"
    assert with_unk.decode(with_unk.encode("a€b\U0001F600")) == "a?b?"
    with pytest.raises(ValueError):
        CharVocab("abca")
    with pytest.raises(ValueError):
        CharVocab("abc", unknown="?")                   # the unknown symbol must be in the vocabulary
    with pytest.raises(ValueError):
        vocab.decode([0, 3])


def test_contiguous_split_sizes_and_order():
    ids = np.arange(1_115_394)
    train, val, test = contiguous_split(ids, 0.1, 0.1)
    assert (len(train), len(val), len(test)) == (892_316, 111_539, 111_539)
    assert np.array_equal(np.concatenate([train, val, test]), ids)
    assert test[-1] == ids[-1] and val[-1] + 1 == test[0]
    train, val, test = contiguous_split(np.arange(200_000), 0.1, 0.1)
    assert (len(train), len(val), len(test)) == (160_000, 20_000, 20_000)
    for bad in [(0.5, 0.5), (-0.1, 0.1), (0.1, 1.0)]:
        with pytest.raises(ValueError):
            contiguous_split(ids, *bad)


def test_ngram_baselines():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 4, 10_000)
    # unigram with add-one smoothing, scored on eval[1:]
    ev = np.array([0, 1, 2, 3, 3])
    p = (np.bincount(train, minlength=5) + 1) / (len(train) + 5)
    assert ngram_cross_entropy(train, ev, 1, 5) == pytest.approx(-np.log(p[ev[1:]]).mean())
    # uniform training text of a deterministic cycle: the bigram model knows the next symbol almost surely
    cycle = np.tile(np.arange(4), 2_500)
    assert ngram_cross_entropy(cycle, cycle[:100], 2, 4) < 0.01
    assert ngram_cross_entropy(cycle, cycle[:100], 1, 4) == pytest.approx(np.log(4), abs=1e-3)
    with pytest.raises(ValueError):
        ngram_cross_entropy(cycle, cycle, 3, 4)


def test_windows():
    ids = np.arange(1_001)
    x, y = non_overlapping_windows(ids, 100)
    assert x.shape == y.shape == (10, 100)
    assert np.array_equal(y, x + 1) and np.array_equal(y.ravel(), ids[1:1001])
    x, y = random_windows(ids, 50, 8, np.random.default_rng(0))
    assert x.shape == y.shape == (8, 50) and np.array_equal(y, x + 1) and y.max() <= 1_000
    x2, _ = random_windows(ids, 50, 8, np.random.default_rng(0))
    assert np.array_equal(x, x2)                        # seeded: the same batch again


def test_temperature_zero_and_near_zero_is_argmax():
    rng = np.random.default_rng(0)
    p = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]])
    assert sample_with_temperature(p, 0.0, rng).tolist() == [1, 0]
    for _ in range(50):
        assert sample_with_temperature(p, 1e-3, rng).tolist() == [1, 0]
    assert sample_with_temperature(np.log(p[0]), 0, rng, logits=True) == 1
    assert np.array_equal(apply_temperature(p, 0.0), [[0, 1, 0], [1, 0, 0]])


def test_temperature_one_reproduces_the_distribution():
    rng = np.random.default_rng(42)
    p = np.array([0.5, 0.25, 0.15, 0.1, 0.0])
    n = 40_000
    draws = sample_with_temperature(np.tile(p, (n, 1)), 1.0, rng)
    freq = np.bincount(draws, minlength=5) / n
    # 4 standard errors of a binomial proportion; the zero-probability symbol is never drawn
    assert np.all(np.abs(freq - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1e-12)
    assert freq[4] == 0
    # the same from logits, and one draw at a time from a 1-D distribution
    logits = np.log(p[:4]) + 3.0
    single = [sample_with_temperature(logits, 1.0, rng, logits=True) for _ in range(20_000)]
    assert isinstance(single[0], int)
    assert np.allclose(np.bincount(single, minlength=4) / 20_000, p[:4], atol=0.015)


def test_temperature_reshapes_as_p_to_the_one_over_t():
    p = np.array([0.6, 0.3, 0.1])
    for t in (0.5, 2.0):
        q = p ** (1 / t)
        assert np.allclose(apply_temperature(p, t), q / q.sum())
        assert np.allclose(apply_temperature(np.log(p) + 7, t, logits=True), q / q.sum())
    # one temperature per row
    rows = apply_temperature(np.tile(p, (3, 1)), [0.0, 1.0, 100.0])
    assert np.allclose(rows[0], [1, 0, 0]) and np.allclose(rows[1], p) and np.allclose(rows[2], 1 / 3, atol=0.01)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), [1.0, -1.0]])
def test_invalid_temperature_raises(bad):
    with pytest.raises(ValueError, match="temperature"):
        sample_with_temperature(np.full((2, 3), 1 / 3), bad, np.random.default_rng(0))


def test_invalid_distributions_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sample_with_temperature(np.array([0.5, -0.1, 0.6]), 1.0, rng)
    with pytest.raises(ValueError):
        sample_with_temperature(np.zeros(3), 1.0, rng)
    with pytest.raises(ValueError):
        sample_with_temperature(np.full((2, 3), 1 / 3), [1.0, 1.0, 1.0], rng)


def test_generate_feeds_history_and_samples_per_temperature():
    vocab = CharVocab.fit("ab")
    calls = []

    def next_probs(history):
        calls.append(history.copy())
        # deterministic model: after 'a' comes 'b', after 'b' comes 'a'
        last = history[:, -1]
        return np.eye(2)[1 - last]

    out = generate(next_probs, vocab.encode("ab"), 5, [0.0, 1.0], np.random.default_rng(0))
    assert out.shape == (2, 5) and out.dtype == np.int64
    assert [vocab.decode(r) for r in out] == ["ababa", "ababa"]
    assert calls[0].tolist() == [[0, 1], [0, 1]] and calls[-1].shape == (2, 6)
    with pytest.raises(ValueError):
        generate(next_probs, [], 3, [1.0], np.random.default_rng(0))


def test_importing_text_does_not_import_a_framework():
    code = "import sys, dl_utils.text; print(any(m in sys.modules for m in ('torch', 'tensorflow', 'keras')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
