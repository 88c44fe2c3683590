"""The model: the Densing-Law formulas (``laws``), the PyMC model built from them (``build``)
and the simulator that draws data from it (``simulate``). Importing this package imports no
PyMC: ``laws`` is plain array code that the configuration and the sampler also use."""
