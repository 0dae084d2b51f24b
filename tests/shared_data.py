# SPDX-License-Identifier: Apache-2.0
"""The real models and evaluation data in ../shared, as (model path, inputs, labels) per model.

Shared by the tests and the benchmarks. Inputs come with a leading sample axis,
in the dtype the model's input takes (int8 for full-int8 models, float32 otherwise).
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(__import__("os").environ.get("TERNEMBED_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"


@dataclass
class Case:
    name: str
    model: Path
    inputs: list[np.ndarray]  # one array per model input, leading sample axis
    labels: np.ndarray | None = None
    float_model: Path | None = None  # the float original, when there is one
    notes: dict = field(default_factory=dict)


def quantize(x: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float64) / scale) + zp, -128, 127).astype(np.int8)


def _input_quant(model: Path) -> tuple[float, int]:
    from ternembed.tflite import read
    g = read(model)
    t = g.tensors[g.inputs[0]]
    return t.quant.s, t.quant.zp


def ad_windows() -> np.ndarray:
    """The 196 windows of 5 log-mel frames (640 values) of the bundled ToyCar clip."""
    frames = np.fromfile(MODELS / "mlperf_ad/samples/normal_id_01_00000000_hist_librosa.bin",
                         dtype=np.float32).reshape(200, 128)
    return np.stack([frames[i:i + 5].reshape(640) for i in range(196)])


def cifar_images() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    files = sorted((DATA / "foolbox").glob("cifar10_*.png"))
    imgs = np.stack([np.asarray(Image.open(f).convert("RGB"), np.float32) for f in files])
    labels = np.array([int(f.stem.split("_")[-1]) for f in files])
    return imgs, labels


def person_images() -> tuple[np.ndarray, np.ndarray]:
    """person.bmp and no_person.bmp as [2, 96, 96] int8 (the bytes are the model's int8 values)."""
    out = []
    for name in ("person", "no_person"):
        raw = (MODELS / f"tflm/person_detection_data/{name}.bmp").read_bytes()
        offset = int.from_bytes(raw[10:14], "little")
        out.append(np.frombuffer(raw[offset:offset + 96 * 96], np.int8).reshape(96, 96))
    return np.stack(out), np.array([1, 0])


def sine_inputs(n: int = 200) -> np.ndarray:
    return np.linspace(0, 2 * np.pi, n, dtype=np.float32).reshape(n, 1)


def random_int8(shape: tuple[int, ...], n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n,) + tuple(shape), dtype=np.int16).astype(np.int8)


def int8_cases() -> list[Case]:
    """Every full-int8 model in ../shared with its bundled samples (as int8 model inputs)."""
    cases = []
    m = MODELS / "mlperf_ad/ad01_int8.tflite"
    s, zp = _input_quant(m)
    cases.append(Case("ad01_int8", m, [quantize(ad_windows(), s, zp)], float_model=MODELS / "mlperf_ad/ad01_fp32.tflite"))

    imgs, labels = cifar_images()
    for name, path, fl in [("ic_int8", "mlperf_ic/pretrainedResnet_quant.tflite", "mlperf_ic/pretrainedResnet.tflite"),
                           ("ic_large_int8", "mlperf_ic_large/pretrainedResnet_large_int8.tflite",
                            "mlperf_ic_large/pretrainedResnet_large_float.tflite")]:
        m = MODELS / path
        s, zp = _input_quant(m)
        cases.append(Case(name, m, [quantize(imgs, s, zp)], labels, MODELS / fl))

    m = MODELS / "mlperf_sww/str_ww_ref_model.tflite"
    s, zp = _input_quant(m)
    z = np.load(MODELS / "mlperf_sww/calibration_samples.npz")
    fx = np.load(MODELS / "mlperf_sww/fixed_data_c_test_inputs.npz")
    cases.append(Case("sww_int8", m, [np.concatenate([quantize(z["specs"], s, zp), fx["x"]])],
                      np.concatenate([z["labels"].astype(int), fx["y"]])))

    person, plabels = person_images()
    m = MODELS / "mlperf_vww/vww_96_int8.tflite"
    cases.append(Case("vww_int8", m, [np.repeat(person[..., None], 3, axis=-1)], plabels,
                      MODELS / "mlperf_vww/vww_96_float.tflite"))
    m = MODELS / "tflm/person_detect/person_detect.tflite"
    cases.append(Case("person_detect", m, [person[..., None]], plabels))

    m = MODELS / "tflm/hello_world_int8.tflite"
    s, zp = _input_quant(m)
    cases.append(Case("hello_world_int8", m, [quantize(sine_inputs(), s, zp)],
                      float_model=MODELS / "tflm/hello_world_float.tflite"))

    z = np.load(MODELS / "tflm/micro_speech_data/DERIVED_features_int8_49x40.npz")
    cases.append(Case("micro_speech", MODELS / "tflm/micro_speech_quantized.tflite",
                      [np.stack([z[k].reshape(1960) for k in ("yes", "no", "silence", "noise")])],
                      np.array([2, 3, 0, 0])))

    m = MODELS / "mlperf_kws/kws_ref_model.tflite"
    s, zp = _input_quant(m)
    z = np.load(MODELS / "mlperf_kws/DERIVED_mfcc_float_49x10.npz")
    feats = np.stack([z[k] for k in z.keys() if k != "note"]).reshape(-1, 49, 10, 1)
    one = np.load(MODELS / "mlperf_kws/kws_input_data_cc_int8_1x49x10x1.npy").reshape(1, 49, 10, 1)
    cases.append(Case("kws_int8", m, [np.concatenate([quantize(feats, s, zp), one])]))

    rng = np.random.default_rng(7)
    for name in ("tflite_micro_magic_wand", "autoencoder_example", "image_example1"):
        m = MODELS / f"mltk/{name}/{name}.tflite"
        from ternembed.tflite import read
        g = read(m)
        shape = g.tensors[g.inputs[0]].shape[1:]
        cases.append(Case(f"mltk_{name}", m, [rng.normal(0, 1, (20,) + tuple(shape)).astype(np.float32)]))

    m = MODELS / "unsupported/simple_add_model.tflite"
    from ternembed.tflite import read
    g = read(m)
    cases.append(Case("simple_add", m, [random_int8(g.tensors[i].shape[1:], 10, 3 + k)
                                        for k, i in enumerate(g.inputs)]))
    return cases


def mnist5k() -> tuple[np.ndarray, np.ndarray]:
    with gzip.open(DATA / "mnist5k/mnist_5k.csv.gz", "rt") as f:
        arr = np.loadtxt(f, delimiter=",", skiprows=0)
    return arr[:, 1:].reshape(-1, 28, 28), arr[:, 0].astype(int)
