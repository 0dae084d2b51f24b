# SPDX-License-Identifier: Apache-2.0
"""The README's main job: `ternembed demo` exports, builds, runs on QEMU, validates and benchmarks the
bundled MNIST CNN, and ternary beats int8 on it."""
import json
import subprocess
import sys

from conftest import require_tool


def test_demo_end_to_end(tmp_path):
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    require_tool("qemu-system-arm", "qemu-system-arm")
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "ternembed", "demo", "-o", str(out), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    by_config = {r["config"]: r for r in summary["results"]}
    try:
        import jax  # noqa: F401
        import optax  # noqa: F401
        tuned = {"ternary fine-tuned"}
    except ImportError:
        tuned = set()
    assert set(by_config) == {"int8", "ternary"} | tuned
    for r in by_config.values():  # every held-out digit, bit-exact with the emulator over the serial link
        assert r["samples"] == 500 and r["bit_exact"] == 500
        assert r["accuracy"] > 0.95 and r["ticks_median"] > 0
    # what the demo is for: ternary below int8 on weights, flash and instructions, RAM no higher,
    # accuracy within 1 point
    t, i8 = by_config["ternary"], by_config["int8"]
    assert t["weight_bytes"] < 0.5 * i8["weight_bytes"]
    assert t["flash_bytes"] < i8["flash_bytes"] and t["ticks_median"] < i8["ticks_median"]
    assert t["ram_bytes"] <= i8["ram_bytes"]
    assert t["accuracy"] >= i8["accuracy"] - 0.01 - 1e-9
    if tuned:  # the ternary layers fine-tuned: within half a point of int8 (issue 11)
        ft = by_config["ternary fine-tuned"]
        assert ft["accuracy"] >= i8["accuracy"] - 0.005 - 1e-9
        assert ft["weight_bytes"] < 0.5 * i8["weight_bytes"]
    for name in ("int8", "ternary"):
        assert (out / name / "validate.json").exists() and (out / name / "bench" / "bench.png").exists()
    # a second run replaces its own earlier demo, but never a folder it did not write
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "ternembed", "demo", "-o", str(tmp_path / "other")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "choose another folder" in proc.stderr
    assert (tmp_path / "other" / "keep.txt").exists()
