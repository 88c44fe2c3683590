"""bayes-densing: a Bayesian model of the Densing Law of large language models."""

__version__ = "0.1.0"
