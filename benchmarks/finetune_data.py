# SPDX-License-Identifier: Apache-2.0
"""Real unlabelled fine-tuning data for the shared models, and the inputs held out of it.

IC: 32x32 crops of scikit-learn's two sample photos (china.jpg, flower.jpg; 427x640). Training
crops come from the left three quarters of each photo (random side 32..192 px, flips, and on
60% of them colour gain, brightness and contrast jitter or greyscale); the held-out crops from
the right quarter only (no pixel shared with training, no jitter), plus the 20 CIFAR-10 PNGs.
SWW: the 45 calibration spectrograms + 3 fixed inputs in 3 folds; a fold's training set is the
other 32 inputs, each also shifted in time (+-1..4 frames, edge frames repeated) with gain and
noise. AD: the 196 windows of 5 frames of the ToyCar clip in 3 contiguous blocks of frames
(windows straddling a block boundary are dropped from the held-out block), the training windows
augmented with a level offset and noise in log-mel.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from shared_data import MODELS, cifar_images  # noqa: E402


def photo_crops(n: int, seed: int, cols: tuple[float, float], jitter: bool, size: int = 32) -> np.ndarray:
    """n crops (float 0..255, [n, size, size, 3]) from the column range ``cols`` (fractions) of each photo."""
    from PIL import Image
    from sklearn.datasets import load_sample_images
    imgs = load_sample_images().images
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for k in range(n):
        img = imgs[k % len(imgs)]
        h = img.shape[0]
        c0, c1 = int(cols[0] * img.shape[1]), int(cols[1] * img.shape[1])
        side = int(rng.integers(size, min(6 * size, h, c1 - c0) + 1))
        y, x = int(rng.integers(0, h - side + 1)), c0 + int(rng.integers(0, c1 - c0 - side + 1))
        a = np.asarray(Image.fromarray(img[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR), np.float32)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        if jitter and rng.random() < 0.6:
            a = a * rng.uniform(0.6, 1.4, 3) + rng.uniform(-40, 40)
            m = a.mean()
            a = (a - m) * rng.uniform(0.6, 1.5) + m
            if rng.random() < 0.3:
                a = np.repeat(a.mean(axis=2, keepdims=True), 3, axis=2)
        out[k] = np.clip(a, 0, 255)
    return out


def ic_data(n_train: int, n_test_crops: int = 480):
    """(train float images, test float images, test labels with -1 for crops)."""
    cif, lab = cifar_images()
    test = np.concatenate([cif, photo_crops(n_test_crops, 7, (0.75, 1.0), jitter=False)])
    labels = np.concatenate([lab, -np.ones(n_test_crops, int)])
    return photo_crops(n_train, 1, (0.0, 0.75), jitter=True), test, labels


def sww_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float spectrograms [45,...], their labels, the 3 fixed int8 inputs with labels)."""
    z = np.load(MODELS / "mlperf_sww/calibration_samples.npz")
    fx = np.load(MODELS / "mlperf_sww/fixed_data_c_test_inputs.npz")
    return z["specs"].astype(np.float32), z["labels"].astype(int), (fx["x"], fx["y"].astype(int))


def folds(n: int, k: int = 3) -> list[np.ndarray]:
    """k interleaved folds of range(n) (seeded shuffle)."""
    perm = np.random.default_rng(0).permutation(n)
    return [np.sort(perm[i::k]) for i in range(k)]


def augment_spectrograms(x: np.ndarray, copies: int, seed: int, scale: float) -> np.ndarray:
    """x [n, T, 1, F] float: each input plus ``copies`` time-shifted, rescaled, noisy versions
    (``scale`` = one int8 step, the noise is up to 2 steps)."""
    rng = np.random.default_rng(seed)
    out = [x]
    for _ in range(copies):
        sh = rng.integers(-4, 5, len(x))
        y = np.stack([np.roll(a, s, axis=0) for a, s in zip(x, sh)])
        for a, s in zip(y, sh):  # repeat the edge frame instead of wrapping around
            if s > 0:
                a[:s] = a[s]
            elif s < 0:
                a[s:] = a[s - 1]
        y = y * rng.uniform(0.8, 1.2, (len(x), 1, 1, 1)) + rng.normal(0, 2 * scale, y.shape)
        out.append(np.clip(y, 0, None).astype(np.float32))
    return np.concatenate(out)


def ad_frames() -> np.ndarray:
    return np.fromfile(MODELS / "mlperf_ad/samples/normal_id_01_00000000_hist_librosa.bin",
                       dtype=np.float32).reshape(200, 128)


def ad_windows(frames: np.ndarray) -> np.ndarray:
    return np.stack([frames[i:i + 5].reshape(640) for i in range(len(frames) - 4)])


def ad_folds(k: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training frames, held-out windows) per fold: contiguous blocks of frames; the training
    frames are the other blocks (each kept as its own run, no window across a gap)."""
    fr = ad_frames()
    edges = np.linspace(0, len(fr), k + 1).astype(int)
    out = []
    for i in range(k):
        test = ad_windows(fr[edges[i]:edges[i + 1]])
        runs = [fr[edges[j]:edges[j + 1]] for j in range(k) if j != i]
        out.append((runs, test))
    return out


def augment_ad(runs: list[np.ndarray], copies: int, seed: int) -> np.ndarray:
    """Windows of each training run, plus ``copies`` versions with a level offset and noise."""
    rng = np.random.default_rng(seed)
    base = np.concatenate([ad_windows(r) for r in runs])
    out = [base]
    for _ in range(copies):
        out.append(base + rng.normal(0, 1.0, (len(base), 1)) + rng.normal(0, 0.5, base.shape))
    return np.concatenate(out).astype(np.float32)
