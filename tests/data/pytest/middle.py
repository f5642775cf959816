"""Runs crashers.py as a child and exits 0 when it died of SIGSEGV."""

import os
import signal
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
r = subprocess.run([sys.executable, os.path.join(here, "crashers.py")], timeout=60)
sys.exit(0 if r.returncode == -signal.SIGSEGV else 1)
