"""The package's structure (docs/architecture.md): folders along the pipeline, no import cycle,
short functions, light modules that import no PyMC, and every prior as data."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bayes_densing"
DOCS = PACKAGE.parent / "docs"
MAX_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The package's modules that ``name`` imports anywhere (in functions too); a
    ``from package import name`` counts as the submodule where there is one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            found.update(subs or ({node.module} & modules.keys()))
    # the package's own __init__ runs first anyway; it is lazy (bayes_densing/__init__.py)
    return found - {name, "bayes_densing"}


def test_no_import_cycle():
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                pytest.fail("import cycle: " + " → ".join(cycle))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


# which stages a stage may import (direct imports, in functions too): the sampler stands alone,
# the data layer needs only the configuration, and only the pipeline's driver and the command
# line draw figures (a sweep's figure is drawn by the CLI after the analysis wrote its tables)
MAY_IMPORT = {
    "sampling": {"sampling"},
    "data": {"data", "config"},
    "analyses": lambda stage: stage not in {"figures", "cli"},
    "results": lambda stage: stage not in {"analyses", "figures", "cli", "run"},
    "figures": lambda stage: stage != "cli",
}


def test_each_stage_imports_only_what_it_may():
    modules = _modules()
    wrong = []
    for name, path in modules.items():
        stage = name.split(".")[1] if "." in name else ""
        rule = MAY_IMPORT.get(stage)
        if rule is None:
            continue
        allowed = rule if callable(rule) else rule.__contains__
        for dep in _imports(name, path, modules):
            if not allowed(dep.split(".")[1]):
                wrong.append(f"{name} imports {dep}")
    assert not wrong, "\n".join(wrong)


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                                f"{node.name} ({lines} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_every_stage_has_its_folder():
    """A newcomer finds each stage by its folder's name (docs/architecture.md)."""
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"data", "model", "inference", "sampling", "results", "analyses", "figures",
            "cli", "distributed"} <= folders
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    for folder in folders:
        assert f"bayes_densing/{folder}/" in text, f"docs/architecture.md does not place {folder}/"


BLOCK = """
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pymc", "arviz", "pytensor"):
            raise ImportError(f"{name} is not importable here")
        return None

sys.meta_path.insert(0, Refuse())
"""


def _run_without_pymc(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=300)


def test_the_configuration_laws_priors_and_run_directory_import_without_pymc():
    """A config, the laws, the priors as data, the run directory's checks and the interrupt
    handler are light: the CLI installs the handler before any thread starts (a heavy import
    first starts threads that would take the signals), and checks a run directory before the
    modelling stack loads."""
    done = _run_without_pymc("""
        from bayes_densing import interrupts
        from bayes_densing.config import load_config
        from bayes_densing.data import load
        from bayes_densing.results import rundir
        from bayes_densing.model import laws, priors, curves, likelihood
        import importlib, pkgutil
        import bayes_densing.sampling as sampling     # its run: tests/test_sampling_package.py
        for m in pkgutil.iter_modules(sampling.__path__):
            importlib.import_module(f"bayes_densing.sampling.{m.name}")
        cfg = load_config("paper")
        assert cfg.priors.slope_sd == priors.DEFAULT_PRIORS["slope_sd"]
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_every_prior_is_data_a_config_key_and_documented():
    """Every prior setting the components read is a default in model/priors.py, a key of
    ``[priors]`` (so presets and --set override it) and a row of docs/model.md's table."""
    from dataclasses import fields

    from bayes_densing.config import Config
    from bayes_densing.model import likelihood, loss_law, performance, priors, trend

    keys = {f.name for f in fields(Config().priors)}
    assert keys == set(priors.DEFAULT_PRIORS)
    components = (performance.PerformanceMap, trend.Trend, loss_law.LossLaw, likelihood.Likelihood)
    assert set().union(*(c.default_priors for c in components)) == keys
    doc = (DOCS / "model.md").read_text(encoding="utf-8")
    missing = [k for k in keys if f"`priors.{k}`" not in doc]
    assert not missing, f"docs/model.md does not list the priors {missing}"
    # nothing in the components names a prior number that is not a setting: each P.<key> exists
    for module in (performance, trend, loss_law, likelihood):
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        used = {n.attr for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "P"}
        assert used <= keys, f"{module.__name__} reads unknown priors {used - keys}"
