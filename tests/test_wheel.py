# SPDX-License-Identifier: Apache-2.0
"""A built wheel installs into a fresh venv and works from there, with boards/firmware/templates inside it."""
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from shared_data import MODELS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(ROOT)], check=True)
    wheels = list((tmp / "dist").glob("ternembed-*.whl"))
    assert len(wheels) == 1
    # A fresh venv that borrows the heavy dependencies (numpy, litert) from this interpreter's
    # site-packages (a venv or not), but gets ternembed itself only from the wheel: a path line in a
    # .pth file adds the folder without running the .pth files inside it (our editable install).
    venv.create(tmp / "venv", with_pip=True)
    py = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "borrowed.pth").write_text("\n".join(sorted(here)) + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "-q", str(wheels[0])], check=True)
    return tmp, py, wheels[0]


def test_wheel_contains_shipped_folders(wheel_venv):
    import zipfile
    _, _, wheel = wheel_venv
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("boards", "firmware", "templates"):
        assert any(n.startswith(f"ternembed/_data/{folder}/") for n in names), folder
    assert "ternembed/_data/firmware/include/te_fixedpoint.h" in names
    # the demo's model and data, and the digits example the tests use
    from ternembed import demo
    for name in (demo.MODEL, demo.TEST_SET, demo.CALIB_SET):
        assert f"ternembed/_data/examples/{demo.EXAMPLE}/{name}" in names, name
    assert "ternembed/_data/examples/digits/digits_int8.tflite" in names


def test_installed_cli_works_outside_the_checkout(wheel_venv):
    tmp, py, _ = wheel_venv
    script = tmp / "venv" / "bin" / "ternembed"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, cwd=tmp, env=env)
    assert out.returncode == 0 and out.stdout.startswith("ternembed ")
    out = subprocess.run([str(script), "inspect", str(MODELS / "tflm/hello_world_int8.tflite")],
                         capture_output=True, text=True, cwd=tmp, env=env)
    assert out.returncode == 0 and "FULLY_CONNECTED" in out.stdout
    where = subprocess.run([str(py), "-c", "import ternembed, ternembed.resources as r;"
                            "print(ternembed.__file__); print(r.resource_dir('firmware'))"],
                           capture_output=True, text=True, cwd=tmp, env=env).stdout.split()
    assert str(tmp / "venv") in where[0], "ternembed was not imported from the wheel"
    assert where[1].endswith("ternembed/_data/firmware")
