"""The fixed cost of `pytest --crashcatch`: a one-test session, bare and with the plugin,
alternated; prints the medians and their difference.

Usage:
  python3 scripts/bench-pytest-plugin.py [RUNS]
      from the installed wheel (after `make wheel-test`, which makes target/wheel-test-venv)
  python3 scripts/bench-pytest-plugin.py [RUNS] --source [--binary target/release/crashcatch]
      the plugin from python/ (with -p crashcatch.pytest_plugin in both runs) and the given
      binary, with the test venv's python (target/venv)
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("runs", nargs="?", type=int, default=7)
ap.add_argument("--source", action="store_true", help="the plugin from python/, the test venv's python")
ap.add_argument("--binary", default=os.path.join(root, "target", "release", "crashcatch"))
ap.add_argument("--python", default=None, help="the interpreter (default: the wheel's venv, or target/venv with --source)")
a = ap.parse_args()

venv = "venv" if a.source else "wheel-test-venv"
py = a.python or os.path.join(root, "target", venv, "bin", "python")
work = tempfile.mkdtemp()
os.chdir(work)
with open("test_a.py", "w") as f:
    f.write("def test_a():\n    pass\n")
env = {k: v for k, v in os.environ.items() if not k.startswith(("CRASHCATCH", "PYTEST_"))}
plugin = []
if a.source:
    env["PYTHONPATH"] = os.path.join(root, "python")
    env["CRASHCATCH_BINARY"] = os.path.abspath(a.binary)
    plugin = ["-p", "crashcatch.pytest_plugin"]
res = {"bare": [], "crashcatch": []}
for i in range(a.runs):
    for name, extra in (("bare", []), ("crashcatch", ["--crashcatch=required"])):
        t = time.perf_counter()
        cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin, "test_a.py", *extra]
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        res[name].append(time.perf_counter() - t)
b, c = statistics.median(res["bare"]), statistics.median(res["crashcatch"])
print(f"{a.runs} runs: bare {b*1000:.0f} ms, --crashcatch {c*1000:.0f} ms, ratio {c/b:.2f}, difference {1000*(c-b):.0f} ms")
