"""bayes-densing: a Bayesian model of the Densing Law of large language models.

>>> from bayes_densing import load_config, fit   # doctest: +SKIP
>>> result = fit(load_config("default"), out="runs/demo")  # doctest: +SKIP
>>> print(result.summary)  # doctest: +SKIP
"""

__version__ = "0.3.0"
__all__ = ["Config", "load_config", "fit", "__version__"]


def __getattr__(name):  # lazy: `import bayes_densing` must not import PyMC and JAX
    if name in ("Config", "load_config"):
        from bayes_densing import config

        return getattr(config, name)
    if name == "fit":
        from bayes_densing.run import fit

        return fit
    raise AttributeError(f"module 'bayes_densing' has no attribute {name!r}")
