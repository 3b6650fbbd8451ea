"""One-step-ahead forecast of the yearly sunspot numbers (1700-2008, shipped with
statsmodels) with an LSTM, against the persistence baseline (next year = this year).

    python examples/sunspots_lstm.py          # needs: pip install statsmodels

Each input is the last 20 years (standardized with the training years' mean and standard
deviation), the target the next year's number; the last 60 years are the test set.  The
11-year cycle is what the LSTM learns and persistence cannot: persistence is off by a
year's change, about 33 spots (root mean square) over the test years.
"""
import numpy as np

import fastbp

WINDOW = 20
TEST_YEARS = 60


def load_sunspots():
    try:
        from statsmodels.datasets import sunspots
    except ImportError:
        raise SystemExit("this example needs statsmodels: pip install statsmodels") from None
    data = sunspots.load_pandas().data
    return data["YEAR"].to_numpy(int), data["SUNACTIVITY"].to_numpy(float)


def main():
    years, s = load_sunspots()
    split = len(s) - TEST_YEARS
    mu, sd = s[:split].mean(), s[:split].std()
    z = (s - mu) / sd
    targets = np.arange(WINDOW, len(s))                       # index of the year predicted
    X = np.stack([z[t - WINDOW:t] for t in targets])[:, :, None]  # (n, 20 steps, 1)
    y = z[targets][:, None]
    train = targets < split
    test = ~train

    net = fastbp.Network([1, fastbp.LSTM(32), 1], output="identity", seed=0)
    history = net.fit(X[train], y[train], epochs=60, batch_size=16, optimizer="adam",
                      learning_rate=0.01, seed=0)
    forecast = net.predict(X[test])[:, 0] * sd + mu
    actual = s[targets[test]]
    persistence = s[targets[test] - 1]
    mse_lstm = float(np.mean((forecast - actual) ** 2))
    mse_persistence = float(np.mean((persistence - actual) ** 2))
    print(f"sunspots {years[0]}-{years[-1]}: {train.sum()} training windows of {WINDOW} "
          f"years, test years {years[targets[test][0]]}-{years[-1]}; {history.epochs} "
          f"epochs in {sum(history.seconds):.2f} s")
    print(f"LSTM test MSE {mse_lstm:.1f}")
    print(f"persistence test MSE {mse_persistence:.1f}")
    return mse_lstm, mse_persistence


if __name__ == "__main__":
    main()
