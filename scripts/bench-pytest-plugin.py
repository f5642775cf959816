"""The fixed cost of `pytest --crashcatch`: a one-test session from the wheel's venv, bare and
with the plugin, alternated; prints the medians. Usage (after `make wheel-test`, which makes
target/wheel-test-venv): python3 scripts/bench-pytest-plugin.py [RUNS]"""
import subprocess, sys, time, statistics, os
import tempfile
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
py = os.path.join(root, "target", "wheel-test-venv", "bin", "python")
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
work = tempfile.mkdtemp()
os.chdir(work)
with open("test_a.py", "w") as f:
    f.write("def test_a():\n    pass\n")
env = {k: v for k, v in os.environ.items() if not k.startswith(("CRASHCATCH", "PYTEST_"))}
res = {"bare": [], "crashcatch": []}
for i in range(runs):
    for name, extra in (("bare", []), ("crashcatch", ["--crashcatch"])):
        t = time.perf_counter()
        subprocess.run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_a.py", *extra], env=env, stdout=subprocess.DEVNULL, check=True)
        res[name].append(time.perf_counter() - t)
b, c = statistics.median(res["bare"]), statistics.median(res["crashcatch"])
print(f"bare {b*1000:.0f} ms, --crashcatch {c*1000:.0f} ms, ratio {c/b:.2f}, difference {1000*(c-b):.0f} ms")
