# SPDX-License-Identifier: Apache-2.0
"""Float and hybrid models calibrated to int8: accuracy close to the float original."""
import numpy as np

from shared_data import MODELS, ad_windows, cifar_images, sine_inputs
from ternembed import emulate
from ternembed.calibrate import quantize_graph
from ternembed.lower import lower
from ternembed.tflite import read


def calibrated_plan(path, samples):
    return lower(quantize_graph(read(path), path, [samples]))


def cifar_like_crops(n=200, seed=0):
    """32x32 crops of scikit-learn's two sample photos: calibration data that is not the test set."""
    from sklearn.datasets import load_sample_images
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    out = []
    for k in range(n):
        img = photos[k % len(photos)]
        size = int(rng.integers(32, 160))
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        crop = img[y:y + size, x:x + size]
        idx = (np.arange(32) * size // 32)
        out.append(crop[idx][:, idx].astype(np.float32))
    return np.stack(out)


def test_ic_fp32_calibrated_keeps_19_of_20():
    imgs, labels = cifar_images()
    plan = calibrated_plan(MODELS / "mlperf_ic/pretrainedResnet.tflite", cifar_like_crops())
    probs = emulate.run(plan, [imgs])[0]
    assert probs.dtype == np.float32
    assert (probs.argmax(1) == labels).sum() >= 19


def test_ad_fp32_calibrated_score_within_3_percent():
    x = ad_windows()
    plan = calibrated_plan(MODELS / "mlperf_ad/ad01_fp32.tflite", x)
    y = emulate.run(plan, [x])[0]
    score = float(np.mean(np.mean((x - y) ** 2, axis=1)))
    assert abs(score - 9.7071) / 9.7071 < 0.03, score


def test_hello_world_float_calibrated_mae():
    x = sine_inputs(1000)
    plan = calibrated_plan(MODELS / "tflm/hello_world_float.tflite",
                           np.random.default_rng(0).uniform(0, 2 * np.pi, (500, 1)).astype(np.float32))
    y = emulate.run(plan, [x])[0]
    assert np.abs(y - np.sin(x)).mean() < 0.05


def test_vww_float_calibrated_agrees_on_person_images():
    from shared_data import person_images
    person, labels = person_images()
    grey = (person.astype(np.float32) + 128.0)
    x = np.repeat(grey[..., None], 3, axis=-1)
    from ternembed.reference import run_litert
    path = MODELS / "mlperf_vww/vww_96_float.tflite"
    x = x / 255.0 if read(path).tensors[read(path).inputs[0]].dtype == "float32" else x
    ref = run_litert(path, [x])[0]
    calib = np.clip(x[np.arange(40) % 2] + np.random.default_rng(1).normal(0, 0.05, (40, 96, 96, 3)), 0, 1)
    y = emulate.run(calibrated_plan(path, calib.astype(np.float32)), [x])[0]
    assert (y.argmax(1) == ref.argmax(1)).all()


def test_hybrid_kws_model_calibrates():
    z = np.load(MODELS / "mlperf_kws/DERIVED_mfcc_float_49x10.npz")
    feats = np.stack([z[k] for k in z.keys() if k != "note"]).reshape(-1, 49, 10, 1).astype(np.float32)
    path = MODELS / "mlperf_kws/kws_ref_model_float32.tflite"
    from ternembed.reference import run_litert
    ref = run_litert(path, [feats])[0]
    y = emulate.run(calibrated_plan(path, feats), [feats])[0]
    assert (y.argmax(1) == ref.argmax(1)).mean() >= 5 / 6
