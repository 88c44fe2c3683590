"""The model: the Densing-Law formulas (``laws``) and the PyMC model built from its components
(``build``: ``performance``, ``trend``, ``loss_law``, ``likelihood``, each with its priors as
data in ``priors``), the curves and scores they imply (``curves``) and the simulator that draws
data from it (``simulate``). Importing this package imports no PyMC: ``laws``, ``priors`` and
``curves`` are plain array code that the configuration, the results and the sampler also use.
"""


class ModelError(ValueError):
    """The model cannot be built for this data and configuration; the message says why."""
