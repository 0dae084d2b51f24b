# SPDX-License-Identifier: Apache-2.0
"""Where the files shipped beside the code live: boards/, firmware/, templates/, examples/.

In a source checkout they are top-level folders next to the package; in an
installed wheel they are packed inside it under ternembed/_data/.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
RESOURCES = ("boards", "firmware", "templates", "examples")


def resource_dir(name: str) -> Path:
    """The folder holding one kind of shipped files (boards, firmware, templates or examples)."""
    if name not in RESOURCES:
        raise ValueError(f"unknown resource folder {name!r}; known: {', '.join(RESOURCES)}")
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"ternembed's {name}/ folder is missing from the installation "
                            f"(looked in {_PACKAGE / '_data' / name} and {_PACKAGE.parent / name})")
