# SPDX-License-Identifier: Apache-2.0
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shared_data import MODELS, SHARED  # noqa: E402

# Without ../shared the unit tests still run; a test (or a whole module, when it loads a model
# at import) that reaches for a file in it is skipped with this one line. CI has ../shared.
NO_SHARED = f"needs the real models in {SHARED} (absent here; CI runs it)"


#: for a test that needs ../shared without opening a file in it first
requires_shared = pytest.mark.skipif(not MODELS.is_dir(), reason=NO_SHARED)


def _needs_shared(text: str) -> bool:
    return not MODELS.is_dir() and str(SHARED) in text


def pytest_configure(config):
    if not MODELS.is_dir():
        config.issue_config_time_warning(pytest.PytestConfigWarning(
            f"{MODELS} is missing: the tests that need the real models skip "
            "(set TERNEMBED_SHARED to the folder that holds models/ and data/)"), stacklevel=2)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _needs_shared(str(rep.longrepr)):
        rep.outcome, rep.longrepr = "skipped", (str(collector.path), 0, f"Skipped: {NO_SHARED}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.excinfo is not None and _needs_shared(str(call.excinfo.value)):
        rep.outcome, rep.longrepr = "skipped", (str(item.path), item.location[1] or 0, f"Skipped: {NO_SHARED}")


def require_tool(name: str, package: str):
    """Skip loudly when a system tool is missing (CI installs them all)."""
    if shutil.which(name) is None:
        pytest.skip(f"{name} not found: apt-get install {package}")
