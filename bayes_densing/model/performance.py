"""The performance map as a model component: p_ij = d_j + c_j·σ(γ_j·(l_j − L_ij)).

(l_j, γ_j) are sampled as the score's logit z at the references' geometric-mean size and its
gain from the smallest to the largest reference size at D0 (``laws.sigmoid_through``): z is
linear in them, level and gain are nearly uncorrelated, and a benchmark that barely moves with
size stays well-posed. The ceiling c_j is 1 − d_j, or a free fraction of it.
"""

from __future__ import annotations

from bayes_densing.model import priors


class PerformanceMap:
    """The priors of every benchmark's (z_centre, z_gain) and, with ``ceiling = "free"``, its
    ceiling fraction (inside a PyMC model); the map itself is ``curves.curve_parameters``."""

    default_priors = priors.PERFORMANCE_MAP

    def __init__(self, ceiling: str):
        self.ceiling = ceiling

    def build(self, P) -> dict:
        return {**self.anchors(P), **self.ceilings(P)}

    def anchors(self, P) -> dict:
        """Each benchmark's (z_centre, z_gain)."""
        import pymc as pm

        return {"z_centre": pm.Normal("z_centre", P.z_centre, P.z_centre_sd, dims="benchmark"),
                "z_gain": pm.HalfNormal("z_gain", P.z_gain, dims="benchmark")}

    def ceilings(self, P) -> dict:
        """Each benchmark's ceiling fraction where the ceiling is free; none where it is fixed."""
        import pymc as pm

        if self.ceiling != "free":
            return {}
        return {"ceiling_frac": pm.Beta("ceiling_frac", P.ceiling_a, P.ceiling_b,
                                        dims="benchmark")}
