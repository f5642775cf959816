"""crashcatch: catch native crashes of Python processes and explain them.

The work is done by the ``crashcatch`` binary this wheel installs next to the interpreter (a
venv's ``bin/``). This package only finds it; :mod:`crashcatch.pytest_plugin` runs a pytest
session under it (``pytest --crashcatch``).
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from typing import Optional

__all__ = ["find_binary"]

#: Overrides where the binary is looked for (a path to it).
BINARY_ENV = "CRASHCATCH_BINARY"


def find_binary() -> Optional[str]:
    """The crashcatch binary: ``$CRASHCATCH_BINARY``, else next to the interpreter (where the
    wheel installs it), else the scripts folders of this interpreter, else on PATH."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    candidates = [os.path.join(os.path.dirname(sys.executable), "crashcatch")]
    for scheme in (None, "posix_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        except KeyError:
            continue
        if scripts:
            candidates.append(os.path.join(scripts, "crashcatch"))
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which("crashcatch")
