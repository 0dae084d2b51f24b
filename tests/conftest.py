import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shared_data import MODELS  # noqa: E402


def pytest_configure(config):
    if not MODELS.is_dir():
        raise pytest.UsageError(f"the shared models are missing: expected {MODELS} "
                                "(set TERNEMBED_SHARED to the folder that holds models/ and data/)")


def require_tool(name: str, package: str):
    """Skip loudly when a system tool is missing (CI installs them all)."""
    if shutil.which(name) is None:
        pytest.skip(f"{name} not found: apt-get install {package}")
