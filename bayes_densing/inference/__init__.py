"""From a PyMC model to posterior draws: compiling its log density for the JAX sampler
(``sample``), the cut's two stages (``cut``, ``sequential``), one program for a family of fits
(``sweep``) and the draws back into ArviZ (``bridge``)."""
