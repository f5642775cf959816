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
from typing import Optional, Tuple

__all__ = ["find_binary", "locate_binary"]

#: Overrides where the binary is looked for (a path to it).
BINARY_ENV = "CRASHCATCH_BINARY"


def find_binary() -> Optional[str]:
    """The crashcatch binary: ``$CRASHCATCH_BINARY``, else next to the interpreter (where the
    wheel installs it), else the scripts folders of this interpreter, else on PATH."""
    return locate_binary()[0]


def locate_binary() -> Tuple[Optional[str], str]:
    """The crashcatch binary as :func:`find_binary` finds it, or None and why not (naming
    ``$CRASHCATCH_BINARY`` when that is what points nowhere)."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        if os.access(explicit, os.X_OK) and os.path.isfile(explicit):
            return explicit, ""
        what = "not an executable file" if os.path.exists(explicit) else "no such file"
        return None, f"${BINARY_ENV} is {explicit}: {what}"
    found = _search()
    if found:
        return found, ""
    return None, "the crashcatch binary was not found (next to python, or on PATH; or set $CRASHCATCH_BINARY)"


def _search() -> Optional[str]:
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
