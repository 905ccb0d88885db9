#!/usr/bin/env python3
"""gen.py trains small XGBoost models on synthetic data and writes the fixtures that
plugins/rank/gbdt's tests compare against: for each model, the file Booster.save_model
writes (<name>.model.json) and <name>.fixture.json with test inputs and xgboost's own
predictions (the raw margin and the transformed output).

Run from the repository root with Debian's xgboost (apt-get install python3-xgboost):

    /usr/bin/python3 plugins/rank/gbdt/testdata/gen.py

The output depends only on the seeds below and the xgboost version (1.7.4 was used).
"""
import json
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["price", "popularity", "rating", "rating_count", "margin", "age_days",
         "discount", "ctr_7d"]


def synthetic(rng, n):
    """Features shaped like the demo catalog's, ~10% of them missing (NaN)."""
    x = np.empty((n, len(NAMES)), dtype=np.float32)
    x[:, 0] = np.exp(rng.normal(3.0, 0.6, n))          # price
    x[:, 1] = rng.pareto(1.2, n) * 3                    # popularity, long tail
    x[:, 2] = np.clip(rng.normal(3.8, 0.6, n), 1, 5)    # rating
    x[:, 3] = np.floor(x[:, 1] * 50 * rng.random(n))    # rating_count
    x[:, 4] = 0.1 + 0.3 * rng.random(n)                 # margin
    x[:, 5] = np.floor(rng.random(n) * 720)             # age_days
    x[:, 6] = np.maximum(0, 0.3 * rng.normal(size=n))   # discount
    x[:, 7] = 0.01 + 0.05 * rng.random(n)               # ctr_7d
    logit = (0.8 * np.log1p(x[:, 1]) + 0.9 * (x[:, 2] - 3.8) - 0.4 * np.log(x[:, 0] / 20)
             + 3 * x[:, 6] - 0.002 * x[:, 5] + 30 * (x[:, 7] - 0.035)
             + 0.5 * np.sin(x[:, 4] * 20))
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, logit


def thresholds(booster):
    """Every (feature index, split condition) of the model, to test exact ties."""
    model = json.loads(booster.save_raw("json"))
    out = []
    for t in model["learner"]["gradient_booster"]["model"]["trees"] if "model" in model["learner"]["gradient_booster"] else model["learner"]["gradient_booster"]["gbtree"]["model"]["trees"]:
        for i, left in enumerate(t["left_children"]):
            if left != -1:
                out.append((t["split_indices"][i], t["split_conditions"][i]))
    return out


def floats(a):
    """float32 values as JSON numbers (shortest round-trip form), NaN as null."""
    return [None if np.isnan(v) else float(np.float32(v)) for v in np.asarray(a, dtype=np.float32)]


def write(name, booster, x, names, note):
    path = os.path.join(HERE, name + ".model.json")
    booster.save_model(path)
    d = xgb.DMatrix(x, feature_names=names, missing=np.nan)
    margin = booster.predict(d, output_margin=True)
    pred = booster.predict(d)
    fixture = {
        "note": note,
        "xgboost": xgb.__version__,
        "model": name + ".model.json",
        "features": names if names is not None else NAMES,
        "rows": [floats(r) for r in x],
        "margin": floats(margin),
        "pred": floats(pred),
    }
    with open(os.path.join(HERE, name + ".fixture.json"), "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(name, os.path.getsize(path), "bytes", booster.num_boosted_rounds(), "trees")


def test_rows(rng, booster, n):
    """n rows: fresh samples, a fifth of them with one feature set exactly to a split
    condition (ties decide between < and <=), a few rows all missing."""
    x, _ = synthetic(rng, n)
    ts = thresholds(booster)
    for r in range(0, n, 5):
        f, c = ts[rng.integers(len(ts))]
        x[r, f] = np.float32(c)
    x[n - 1, :] = np.nan
    x[n - 2, :] = np.nan
    x[n - 2, 1] = 1e30  # extreme but finite
    return x


def main():
    rng = np.random.default_rng(20240501)
    x, logit = synthetic(rng, 3000)
    y_bin = (rng.random(len(x)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    y_reg = (logit + rng.normal(0, 0.3, len(x))).astype(np.float32)

    # binary:logistic with feature names: the plugin maps columns by name.
    d = xgb.DMatrix(x, label=y_bin, feature_names=NAMES, missing=np.nan)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 5, "eta": 0.15,
                   "subsample": 0.9, "seed": 1, "tree_method": "hist"}, d, 50)
    write("logistic", b, test_rows(rng, b, 200), NAMES,
          "binary:logistic, 50 trees, depth 5, feature_names set")

    # reg:squarederror without feature names: the plugin maps columns by order.
    d = xgb.DMatrix(x, label=y_reg, missing=np.nan)
    b = xgb.train({"objective": "reg:squarederror", "max_depth": 6, "eta": 0.1,
                   "seed": 2, "tree_method": "exact", "base_score": 0.25}, d, 50)
    write("squarederror", b, test_rows(rng, b, 200), None,
          "reg:squarederror, 50 trees, depth 6, no feature_names, base_score 0.25")

    # rank:pairwise: raw margins, queries of 20 items.
    d = xgb.DMatrix(x, label=np.clip(np.round(y_reg), 0, 4), feature_names=NAMES, missing=np.nan)
    d.set_group([20] * (len(x) // 20))
    b = xgb.train({"objective": "rank:pairwise", "max_depth": 4, "eta": 0.2, "seed": 3}, d, 20)
    write("pairwise", b, test_rows(rng, b, 100), NAMES, "rank:pairwise, 20 trees, depth 4")

    # dart booster with reg:logistic: per-tree weights (weight_drop).
    d = xgb.DMatrix(x, label=y_bin, feature_names=NAMES, missing=np.nan)
    b = xgb.train({"objective": "reg:logistic", "booster": "dart", "max_depth": 4, "eta": 0.3,
                   "rate_drop": 0.2, "seed": 4}, d, 15)
    write("dart", b, test_rows(rng, b, 100), NAMES, "dart, reg:logistic, 15 trees, depth 4")


if __name__ == "__main__":
    main()
