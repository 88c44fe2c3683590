"""The sampler: NUTS with our windowed warm-up of a dense or conditional metric
(``dense_nuts``), for any log density written in JAX (``density.LogDensity``) with runtime
inputs, so that one compiled program runs a whole family of fits. It imports neither PyMC nor
ArviZ: ``bayes_densing.inference.bridge`` turns the PyMC model into a log density and the draws back
into the model's ArviZ DataTree."""
