# SPDX-License-Identifier: Apache-2.0
"""A generated project builds with `pio run`, offline.

PlatformIO cannot download the ststm32 platform or its toolchain here, so the test follows the
recipe of ../shared/docs/TOOLCHAIN.md: a private PLATFORMIO_CORE_DIR holding a `tool-scons`
package made from the scons wheel, the test-only platform of tests/fixtures/pio_platform
(`platform = file://...`) and the system arm-none-eabi toolchain linked in as
`platform_packages = toolchain-gccarmnoneeabi@symlink://DIR`. Two envs are added to the
generated platformio.ini:

* `pio_f446re` extends the generated `env:nucleo_f446re` and only swaps platform, board and
  toolchain: the generated env (flags, -O3 over the platform's -Os, linker script, board
  define, the tools/ternembed_pio.py extra script) is what gets built;
* `pio_qemu` uses the generated common [env] section for the QEMU mps2-an386 board, and the
  firmware it builds runs to PASS under QEMU.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shared_data import int8_cases
from ternembed.boards import get_board
from ternembed.build import build_project, platformio_usable
from ternembed.lower import lower
from ternembed.render import export_project
from ternembed.tflite import read

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "pio_platform"
MODEL = "micro_speech"


def _scons_version() -> tuple[str, str]:
    """(PlatformIO's tool-scons version, the matching scons release): '4.41101.0' -> '4.11.1'."""
    from platformio.dependencies import get_core_dependencies

    spec = get_core_dependencies()["tool-scons"]  # e.g. "~4.41101.0"
    m = re.search(r"(\d)\.(\d)(\d\d)(\d\d)\.(\d+)", spec)
    if not m:
        pytest.skip(f"unexpected tool-scons requirement {spec!r} in this PlatformIO")
    pio_version = f"{m.group(1)}.{m.group(2)}{m.group(3)}{m.group(4)}.{m.group(5)}"
    return pio_version, f"{m.group(2)}.{int(m.group(3))}.{int(m.group(4))}"


def _scons_wheel(dest: Path, version: str) -> Path:
    proc = subprocess.run([sys.executable, "-m", "pip", "download", f"scons=={version}", "--no-deps",
                           "--only-binary", ":all:", "-d", str(dest)], capture_output=True, text=True)
    wheels = sorted(dest.glob("scons-*.whl"))
    if proc.returncode != 0 or not wheels:
        pytest.skip(f"cannot get the scons {version} wheel for PlatformIO's tool-scons "
                    f"(pip download failed: {proc.stderr.strip()[-300:]})")
    return wheels[0]


@pytest.fixture(scope="module")
def pio_core(tmp_path_factory):
    """A PLATFORMIO_CORE_DIR with tool-scons, and a toolchain folder for symlink://."""
    if shutil.which("pio") is None and shutil.which("platformio") is None:
        pytest.skip("PlatformIO is not installed (pip install platformio)")
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    root = tmp_path_factory.mktemp("pio")
    pio_version, scons_version = _scons_version()
    wheel = _scons_wheel(root / "wheels", scons_version)
    scons = root / "core" / "packages" / "tool-scons"
    scons.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as z:
        for member in z.namelist():
            if member.startswith("SCons/"):
                z.extract(member, scons)
    (scons / "scons.py").write_text(
        "import os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
        "from SCons.Script.Main import main\nmain()\n")
    (scons / "package.json").write_text(json.dumps(
        {"name": "tool-scons", "version": pio_version, "description": "SCons from the PyPI wheel"}))
    (scons / ".piopm").write_text(json.dumps(
        {"type": "tool", "name": "tool-scons", "version": pio_version,
         "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None,
                  "uri": None}}))
    toolchain = root / "toolchain"
    (toolchain / "bin").mkdir(parents=True)
    gcc_dir = Path(shutil.which("arm-none-eabi-gcc")).resolve().parent
    for tool in gcc_dir.glob("arm-none-eabi-*"):
        (toolchain / "bin" / tool.name).symlink_to(tool)
    (toolchain / "package.json").write_text(json.dumps(
        {"name": "toolchain-gccarmnoneeabi", "version": "1.0.0", "description": "system toolchain"}))
    return root / "core", toolchain


@pytest.fixture(scope="module")
def project(tmp_path_factory, pio_core):
    _, toolchain = pio_core
    case = next(c for c in int8_cases() if c.name == MODEL)
    plan = lower(read(case.model))
    out = tmp_path_factory.mktemp("proj") / "p"
    res = export_project(plan, "nucleo_f446re", out, test_inputs=[x[:2] for x in case.inputs])
    common = (f"platform = file://{FIXTURE}\nboard = tetest_cortex_m4\n"
              f"platform_packages = toolchain-gccarmnoneeabi@symlink://{toolchain}\n")
    an386 = get_board("qemu_mps2_an386")
    with (out / "platformio.ini").open("a") as ini:
        ini.write("\n; ---- added by tests/test_platformio.py: the offline test platform ----\n"
                  "[env:pio_f446re]\nextends = env:nucleo_f446re\n" + common +
                  "\n[env:pio_qemu]\n" + common +
                  f"board_build.ldscript = firmware/platform/ld/{an386.name}.ld\n"
                  f"build_flags = ${{env.build_flags}} -D{an386.define}\n"
                  f"custom_te_cpu_flags = {' '.join(an386.cpu_flags)}\n")
    return res


@pytest.fixture
def offline_pio(monkeypatch, pio_core):
    core, _ = pio_core
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(core))
    monkeypatch.setenv("PLATFORMIO_SETTING_ENABLE_TELEMETRY", "No")
    monkeypatch.setenv("PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL", "3650")
    return core


def test_generated_ini_is_valid(project, offline_pio):
    pio = shutil.which("pio") or shutil.which("platformio")
    proc = subprocess.run([pio, "project", "config", "-d", str(project.out_dir)],
                          capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "env:nucleo_f446re" in proc.stdout and "env:nucleo_h743zi" in proc.stdout


def test_pio_run_builds_the_generated_env_offline(project, offline_pio):
    ok, why = platformio_usable(project.out_dir, "pio_f446re")
    assert ok, why
    res = build_project(project.out_dir, "nucleo_f446re", use_platformio=True, pio_env="pio_f446re")
    assert res.method == "platformio"
    assert res.elf == project.out_dir / ".pio" / "build" / "pio_f446re" / "firmware.elf"
    assert res.checks_ok, res.summary()
    assert res.fits and res.symbols["weight_bytes"] == project.weight_bytes
    assert res.map is not None  # written by tools/ternembed_pio.py
    # the generated flags won over the platform's defaults
    cmd = subprocess.run(["arm-none-eabi-objdump", "-d", str(res.elf)], capture_output=True, text=True).stdout
    assert "smlad" in cmd  # Cortex-M4 DSP path


def test_pio_firmware_passes_on_qemu(project, offline_pio):
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not found: apt-get install qemu-system-arm")
    board = get_board("qemu_mps2_an386")
    res = build_project(project.out_dir, board, use_platformio=True, pio_env="pio_qemu")
    assert res.method == "platformio" and res.checks_ok, res.summary()
    from ternembed.device.qemu import run_semihosted
    code, out = run_semihosted(res.elf, board, timeout=60, icount=False)
    text = out.decode(errors="replace")
    assert code == 0 and f"TE-SELFTEST PASS {project.test_samples}/{project.test_samples}" in text, text


def test_auto_falls_back_to_make_when_pio_cannot_build_offline(project, offline_pio, tmp_path, monkeypatch):
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "empty_core"))
    ok, why = platformio_usable(project.out_dir, "nucleo_f446re")
    assert not ok and "not installed" in why
    res = build_project(project.out_dir, "nucleo_f446re", use_platformio="auto")
    assert res.method in ("make", "gcc") and res.checks_ok, res.summary()
