"""Facts the tabular notebooks (14 diabetes, 15 churn) rely on, checked fast and offline.

- 14 treats zeros as missing only in five clinical columns; the others never hold an impossible 0.
- 15 fills the 11 blank ``TotalCharges`` with 0 because they are all brand-new customers (tenure 0).
- 15 picks its threshold with ``metrics.tune_threshold(cost_fn=5, cost_fp=1)``; on calibrated scores that
  must land near the decision-theoretic optimum 1 / (1 + 5).
"""

from __future__ import annotations

import numpy as np

from dl_utils import data, metrics


def test_pima_zeros_mean_missing_only_where_the_notebook_says(mirror_cache):
    df = data.load_pima_diabetes()
    zeros = (df == 0).sum()
    assert zeros[["Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"]].tolist() == [5, 35, 227, 374, 11]
    assert zeros["DiabetesPedigreeFunction"] == 0 and zeros["Age"] == 0
    assert (df["DiabetesPedigreeFunction"] > 0).all()  # the notebook takes log(DPF) and log(Age)


def test_telco_blank_total_charges_are_new_customers(mirror_cache):
    df = data.load_telco_churn()
    blank = df[df["TotalCharges"].isna()]
    assert len(blank) == 11
    assert (blank["tenure"] == 0).all()
    assert (df.loc[df["tenure"] == 0, "TotalCharges"].isna()).all()  # and every tenure-0 customer is blank


def test_cost_tuned_threshold_matches_bayes_rule():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 40_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)  # calibrated scores by construction
    t = metrics.tune_threshold(y, p, cost_fn=5.0, cost_fp=1.0)
    assert abs(t - 1 / 6) < 0.04
    sweep = metrics.threshold_sweep(y, p, thresholds=[t], cost_fn=5.0, cost_fp=1.0).iloc[0]
    assert sweep["cost"] == 5 * sweep["fn"] + sweep["fp"]
    # a costlier miss pushes the threshold down (more customers contacted, more recall)
    assert metrics.tune_threshold(y, p, cost_fn=10.0, cost_fp=1.0) < t
