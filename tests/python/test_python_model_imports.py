"""dbt runs the Python models in threads of one process. Two models importing scikit-learn
for the first time at the same moment get a half-initialised module (ImportError "from
partially initialized module 'sklearn.base'"), unless the dbt-duckdb plugin of
profiles.yml has imported everything before the threads start (xsell/dbt_plugin.py).

Each trial is a fresh interpreter that does what dbt-duckdb does: create the plugins the
duckdb output of profiles.yml lists, then load every file of python_models/ as a module
(spec_from_file_location + exec_module), one thread per model, all released at once onto
the imports they do not share. Without the plugin about half of such trials fail.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import yaml
from support import PROJECT_DIR

TRIALS = 12

TRIAL = r"""
import glob, importlib.util, sys, threading
import yaml
from dbt.adapters.duckdb.plugins import BasePlugin

profile = yaml.safe_load(open("profiles.yml"))["xsell"]["outputs"]["duckdb"]
for plugin in profile.get("plugins") or []:
    BasePlugin.create(plugin["module"])

# What every model shares is imported; the threads then race into what they do not
# (scikit-learn and the xsell.ml modules), switching as often as the interpreter allows.
import numpy, pandas, scipy.optimize, scipy.sparse, scipy.special, xsell.frames  # noqa
sys.setswitchinterval(1e-5)
files = sorted(glob.glob("python_models/**/*.py", recursive=True))
barrier = threading.Barrier(len(files))
errors = []

def load(path):
    spec = importlib.util.spec_from_file_location(path.rsplit("/", 1)[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    barrier.wait()
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        errors.append(f"{path}: {type(error).__name__}: {error}")

threads = [threading.Thread(target=load, args=(path,)) for path in files]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"{len(files)} models loaded")
print("\n".join(errors))
sys.exit(1 if errors else 0)
"""


def _trial(_: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", TRIAL], cwd=PROJECT_DIR, capture_output=True,
                          text=True, check=False)


def test_profile_loads_the_import_plugin():
    profile = yaml.safe_load((PROJECT_DIR / "profiles.yml").read_text())
    modules = [p["module"] for p in profile["xsell"]["outputs"]["duckdb"]["plugins"]]
    assert modules == ["xsell.dbt_plugin"]


def test_python_models_load_concurrently_without_import_errors():
    with ThreadPoolExecutor(max_workers=2) as pool:
        trials = list(pool.map(_trial, range(TRIALS)))
    failed = [t for t in trials if t.returncode != 0]
    assert not failed, f"{len(failed)} of {TRIALS} trials failed:\n" + "\n".join(
        (t.stdout + t.stderr)[-1500:] for t in failed[:3])
    models = len(list(PROJECT_DIR.glob("python_models/**/*.py")))
    assert all(f"{models} models loaded" in t.stdout for t in trials)
