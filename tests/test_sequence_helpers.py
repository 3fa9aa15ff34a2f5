"""Facts the sequence notebooks (16 spam RNN, 19 airline LSTM) rely on, checked fast and offline.

- 19 compares its LSTMs with baselines whose test RMSEs issue 5 measured on the mirrored data: persistence 48.04,
  seasonal naive 41.85, seasonal-ratio naive 15.62 and SARIMA(0,1,1)(0,1,1)12 on logs 13.75 (one step ahead),
  all on the last 48 months (1957-01 … 1960-12).
- 16 uses a stratified split of the 5,574 messages (747 spam) and relies on ``pack_padded_sequence`` making a
  recurrent layer's final state independent of padding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from dl_utils import data, metrics


def test_airline_baselines_match_the_issue(mirror_cache):
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
