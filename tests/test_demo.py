"""The README's main job: `ternembed demo` exports, builds, runs on QEMU, validates and benchmarks."""
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
    assert set(by_config) == {"int8", "ternary"}
    for r in by_config.values():
        assert r["samples"] == 450 and r["bit_exact"] == 450
        assert r["accuracy"] > 0.9 and r["ticks_median"] > 0
    assert by_config["ternary"]["weight_bytes"] < 0.5 * by_config["int8"]["weight_bytes"]
    for name in ("int8", "ternary"):
        assert (out / name / "validate.json").exists() and (out / name / "bench" / "bench.png").exists()
    # a second run replaces its own earlier demo, but never a folder it did not write
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "ternembed", "demo", "-o", str(tmp_path / "other")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "choose another folder" in proc.stderr
    assert (tmp_path / "other" / "keep.txt").exists()
