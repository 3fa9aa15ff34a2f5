"""Facts the sequence notebooks (16 spam RNN, 19 airline LSTM, 20/21 Shakespeare) rely on, checked fast and offline.

- 19 compares its LSTMs with baselines whose test RMSEs were measured on the mirrored data: persistence 48.04,
  seasonal naive 41.85, seasonal-ratio naive 15.62 and SARIMA(0,1,1)(0,1,1)12 on logs 13.75 (one step ahead),
  all on the last 48 months (1957-01 … 1960-12).
- 16 uses a stratified split of the 5,574 messages (747 spam) and relies on ``pack_padded_sequence`` making a
  recurrent layer's final state independent of padding.
- 20 and 21 split Tiny Shakespeare by position into 80 % train, 10 % validation and 10 % test and compare their
  models with count baselines scored on the characters of the 1,115 test windows (the helpers themselves are
  tested in test_text.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from dl_utils import data, metrics
from dl_utils.text import CharVocab, contiguous_split, ngram_cross_entropy, non_overlapping_windows


def test_airline_baselines_match_the_recorded_values(mirror_cache):
    y = data.load_airline_passengers().to_numpy(dtype="float64")
    assert len(y) == 144
    n_train = int(len(y) * 0.67)
    assert n_train == 96
    t = np.arange(n_train, len(y))
    rmse = {
        "persistence": metrics.regression_errors(y[t], y[t - 1])["rmse"],
        "seasonal naive": metrics.regression_errors(y[t], y[t - 12])["rmse"],
        "seasonal-ratio naive": metrics.regression_errors(y[t], y[t - 1] * y[t - 12] / y[t - 13])["rmse"],
    }
    assert rmse == pytest.approx({"persistence": 48.04, "seasonal naive": 41.85, "seasonal-ratio naive": 15.62},
                                 abs=0.006)


def test_airline_sarima_one_step(mirror_cache):
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    y = data.load_airline_passengers().to_numpy(dtype="float64")
    logs = np.log(y)
    fit = SARIMAX(logs[:96], order=(0, 1, 1), seasonal_order=(0, 1, 1, 12)).fit(disp=False)
    pred = np.exp(fit.append(logs[96:], refit=False).predict(start=96, end=143))
    assert metrics.regression_errors(y[96:], pred)["rmse"] == pytest.approx(13.75, abs=0.05)


def test_sms_spam_counts_and_smoke_subset(mirror_cache):
    df = data.load_sms_spam()
    assert len(df) == 5574 and (df["label"] == "spam").sum() == 747
    smoke = data.load_sms_spam(subset=600)
    assert smoke["label"].value_counts().to_dict() == {"ham": 300, "spam": 300}


@pytest.mark.parametrize("cell", [nn.RNN, nn.GRU, nn.LSTM])
def test_packing_makes_the_final_state_ignore_padding(cell):
    torch.manual_seed(0)
    rnn = cell(4, 5, batch_first=True, bidirectional=True)
    x = torch.randn(1, 7, 4)
    padded = torch.cat([x, torch.zeros(1, 13, 4)], dim=1)
    final = []
    for seq in (x, padded):
        _, h = rnn(pack_padded_sequence(seq, torch.tensor([7]), batch_first=True))
        final.append(h[0] if isinstance(h, tuple) else h)
    torch.testing.assert_close(final[0], final[1])
    _, h_unpacked = rnn(padded)   # without packing the padding steps change the state
    h_unpacked = h_unpacked[0] if isinstance(h_unpacked, tuple) else h_unpacked
    assert not torch.allclose(h_unpacked, final[0])


@pytest.mark.parametrize("text_chars, sizes, windows, baselines", [
    (None, (892_316, 111_539, 111_539), 1_115, {"val": (3.3074, 2.4959), "test": (3.3479, 2.5035)}),
    (200_000, (160_000, 20_000, 20_000), 199, {"val": (3.3709, 2.5838), "test": (3.3272, 2.5490)}),
])
def test_shakespeare_split_and_baselines_of_notebooks_20_and_21(mirror_cache, text_chars, sizes, windows, baselines):
    text = data.load_tiny_shakespeare(subset=text_chars)
    vocab = CharVocab.fit(data.load_tiny_shakespeare())
    assert vocab.size == 65
    train, val, test = contiguous_split(vocab.encode(text), 0.10, 0.10)
    assert (len(train), len(val), len(test)) == sizes
    for name, split in {"val": val, "test": test}.items():
        x, _ = non_overlapping_windows(split, 100)
        assert len(x) == windows
        scored = split[: x.size + 1]
        got = (ngram_cross_entropy(train, scored, 1, 65), ngram_cross_entropy(train, scored, 2, 65))
        assert got == pytest.approx(baselines[name], abs=6e-5)
