"""The ``bayes-densing`` command line: thin wrappers over the library. This module makes the
typer ``app`` from the commands (fit.py, sweeps.py, read.py, data.py; their shared options in
options.py) and holds the console script's ``main``.

Exit codes (docs/cli.md has the table of faults): 0 success; 2 bad input, configuration or a
damaged run directory (nothing written); 3 the sampler's diagnostics failed a threshold
(results written; pass --allow-warnings to exit 0); 4 another run published the same --out
first (this run kept under a printed name); 5 an I/O error such as a full disk (nothing
written); 130/143 interrupted (nothing written).
"""

from __future__ import annotations

import typer

from bayes_densing.cli import common, data, fit, read, sweeps

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                  help="Bayesian analysis of the Densing Law of LLMs: how fast does capability "
                       "density (effective ÷ actual parameters) grow, and how sure can we be?\n\n"
                       "**Example:** `bayes-densing sample --out runs/demo` fits the bundled "
                       "dataset and prints the doubling time with its credible interval.")

# in the order `--help` lists them
for _command in (fit.sample, fit.simulate, fit.classic, read.claim, sweeps.sensitivity,
                 sweeps.influence, sweeps.subsets, sweeps.sbc, read.plot, read.report,
                 read.forecast, data.benchmarks, data.datasets):
    app.command()(_command)

# notices printed on every run that say nothing to our users (the same list as pyproject's
# filterwarnings); our own warnings, and everything else, still show
THIRD_PARTY_NOTICES = (("PyTensor could not link to a BLAS", UserWarning),)   # ArviZ 1 has none


def _quiet_third_party_notices() -> None:
    import warnings

    for message, category in THIRD_PARTY_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category)


def main() -> None:
    import gc
    import sys

    common.argv = sys.argv[1:]
    _quiet_third_party_notices()
    from bayes_densing import interrupts

    interrupts.install()   # Ctrl-C / kill stop at once, even mid-sampling, leaving no partial output
    try:
        app()
    finally:
        # the process ends: leave its objects to the OS, which Python's collections at exit
        # would walk once more (benchmarks/README.md, "The default fit on the bundled dataset")
        gc.freeze()


if __name__ == "__main__":
    main()
