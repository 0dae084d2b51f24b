# SPDX-License-Identifier: Apache-2.0
"""Every data file the CLI and the API read: inputs, labels, calibration samples, image folders.

One loader, so every file gets the same checks and the same one-line errors (InputError, exit 2)
naming the file, what is wrong and, where it helps, the sample: no pickles, no empty sets, numbers
only, finite values, labels that match the samples.

    xs, y = load_data("test.npz")                 # [x or input_0, input_1, ...], labels or None
    calib = load_samples("calib/", (96, 96, 3))   # .npy/.npz/folder of images -> float32 [n, ...]
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import InputError
from .fixedpoint import round_half_away_array
from .plan import Plan

__all__ = ["load_data", "load_labels", "load_array", "load_samples", "check_labels", "to_plan_inputs", "load_inputs"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


# What numpy raises on a damaged, truncated or foreign file.
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, UnicodeError, SyntaxError)


def _existing_file(path: Path | str) -> Path:
    p = Path(path)
    if not p.is_file():  # a folder, a device, a pipe: never read (/dev/zero would be endless)
        raise InputError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    return p


def _open_npz(p: Path):
    try:
        with open(p, "rb") as fh:
            head = fh.read(6)
        if head and not head.startswith((b"PK", b"\x93NUMPY")):  # numpy would take it for a pickle
            what = "a pickle, which is never loaded (it could run code)" if head[:1] == b"\x80" else \
                "not a .npy or .npz file"
            raise InputError(f"{p}: {what}; save arrays with numpy.save or numpy.savez")
        return np.load(p, allow_pickle=False)
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: not a readable .npy/.npz file ({_why(exc)})") from None


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "allow_pickle" in text or "pickle" in text.lower():
        return "it holds pickled Python objects, which are never loaded; save plain arrays"
    return text.splitlines()[0] if text else type(exc).__name__


def _array(p: Path, z, key: str) -> np.ndarray:
    try:
        return np.asarray(z[key])
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: array {key!r} cannot be read ({_why(exc)})") from None


def check_samples(p: Path | str, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Numbers, at least one sample, every value finite."""
    if x.dtype.kind not in "biuf":
        raise InputError(f"{p}: {what} are {x.dtype} values; numbers are needed")
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"{p}: {what} hold no samples (shape {list(x.shape)}); the first axis counts samples")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
        if bad.any():
            k = int(np.argmax(bad))
            raise InputError(f"{p}: {what}: sample {k} holds NaN or infinite values "
                             f"({int(bad.sum())} sample(s) do)")
    return x


def check_labels(p: Path | str, y, n: int) -> np.ndarray:
    """Class labels: one integer per sample (one-hot rows are taken as their argmax)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1 and np.isin(y, (0, 1)).all() and (y.sum(1) == 1).all():
        y = y.argmax(axis=1)  # one-hot
    y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise InputError(f"{p}: labels must be one class number per sample, got shape {list(y.shape)} "
                         f"of {y.dtype}")
    if len(y) != n:
        raise InputError(f"{p}: {len(y)} labels for {n} samples")
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise InputError(f"{p}: labels must be whole class numbers")
    return y.astype(np.int64)


def load_data(path: Path | str) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Inputs (and labels) from .npz (x or input_0.., optional y/labels) or .npy."""
    p = _existing_file(path)
    z = _open_npz(p)
    if isinstance(z, np.ndarray):  # a .npy
        return [check_samples(p, z)], None
    with z:
        keys = list(z.keys())
        if "x" in keys:
            names = ["x"]
        elif any(k.startswith("input_") for k in keys):
            names = sorted((k for k in keys if k.startswith("input_")), key=lambda k: (len(k), k))
        elif "inputs" in keys:
            names = ["inputs"]
        else:
            raise InputError(f"{p}: expected an array 'x' (or input_0, input_1, ...) and optionally 'y' "
                             f"with labels; found {', '.join(keys) or 'no arrays'}")
        xs = [check_samples(p, _array(p, z, k), f"array {k!r}") for k in names]
        ykey = "y" if "y" in keys else ("labels" if "labels" in keys else None)
        y = None if ykey is None else check_labels(p, _array(p, z, ykey), len(xs[0]))
    if any(len(x) != len(xs[0]) for x in xs):
        raise InputError(f"{p}: the inputs hold different numbers of samples: {[len(x) for x in xs]}")
    return xs, y


def load_labels(path: Path | str, n: int) -> np.ndarray:
    """Class labels from a .npy (or a .npz's 'y'/'labels'/first array) for n samples."""
    p = _existing_file(path)
    z = _open_npz(p)
    if isinstance(z, np.ndarray):
        return check_labels(p, z, n)
    with z:
        keys = list(z.keys())
        key = next((k for k in ("y", "labels") if k in keys), keys[0] if keys else None)
        if key is None:
            raise InputError(f"{p}: the .npz holds no arrays")
        return check_labels(p, _array(p, z, key), n)


def load_array(path: Path | str) -> np.ndarray:
    """The inputs of a .npy, or of a .npz's 'x' (else its first array)."""
    p = Path(path)
    if p.suffix == ".npz" and p.is_file():
        z = _open_npz(p)
        if isinstance(z, np.ndarray):  # a .npy named .npz
            return check_samples(p, z)
        with z:
            keys = list(z.keys())
            if not keys:
                raise InputError(f"{p}: the .npz holds no arrays")
            return check_samples(p, _array(p, z, "x" if "x" in keys else keys[0]))
    return load_data(p)[0][0]


def load_samples(path: Path | str, shape: tuple[int, ...]) -> np.ndarray:
    """Samples from .npy, .npz (first array, or 'x'), or a folder of images, as [n, *shape]."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        arr = _load_images(path, shape)
    elif path.suffix in (".npy", ".npz"):
        arr = load_array(path)
    else:
        raise InputError(f"{path}: expected a .npy or .npz file or a folder of images")
    want = int(np.prod(shape))
    if arr[0].size != want:
        raise InputError(f"{path}: samples must each hold {want} values (shape {list(shape)}), "
                         f"got an array of shape {list(arr.shape)}")
    return arr.reshape((len(arr),) + tuple(shape))


def _load_images(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise InputError("reading a folder of images needs Pillow: pip install pillow") from None
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no .png/.jpg/.bmp images in the folder")
    h, w, c = (shape[-3], shape[-2], shape[-1]) if len(shape) >= 3 else (None, None, 1)
    out = []
    for f in files:
        try:
            with Image.open(f) as img:
                img = img.convert("L" if c == 1 else "RGB")
                if h and (img.height, img.width) != (h, w):
                    img = img.resize((w, h))
                out.append(np.asarray(img, dtype=np.float32).reshape(shape))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(f"{f}: not a readable image ({_why(exc)})") from None
    return np.stack(out)


def to_plan_inputs(plan: Plan, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Data for the plan's inputs: float data for an int8 input is quantized with its scale/zero point."""
    out = []
    for x, idx in zip(arrays, plan.inputs):
        buf = plan.buffers[idx]
        x = np.asarray(x)
        if buf.dtype == "int8" and np.issubdtype(x.dtype, np.floating):
            q = round_half_away_array(x.astype(np.float64) / buf.scale)  # as TFLite's std::round
            x = np.clip(q + buf.zero_point, -128, 127).astype(np.int8)
        out.append(x)
    return out


def load_inputs(path: Path | str, plan: Plan) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Samples (and labels if present) for the plan from .npy/.npz/folder of images."""
    p = Path(path)
    if p.is_dir():
        shape = plan.buffers[plan.inputs[0]].shape[1:]
        return to_plan_inputs(plan, [load_samples(p, shape)]), None
    xs, y = load_data(p)
    xs = [x.reshape((len(x),) + tuple(plan.buffers[i].shape[1:])) if x.ndim and x[0].size ==
          plan.buffers[i].size else x for x, i in zip(xs, plan.inputs)]
    return to_plan_inputs(plan, xs), y
