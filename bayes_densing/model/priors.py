"""Every prior setting of the model, as data: each component's defaults with what they set.

The components (``performance``, ``trend``, ``loss_law``, ``likelihood``) read their settings
from ``config.priors`` (a :class:`PriorConfig`, built from these tables), which the TOML
presets and ``--set priors.KEY=VALUE`` override; no prior number is written in the model code.
Units: ln(billions) for sizes, months for time. This module imports no PyMC.
"""

from __future__ import annotations

from dataclasses import field, make_dataclass

# (component, key, default, what it sets): every prior number of the model
TABLE = (
    ("performance map", "z_centre", 0.0, "score logit at the references' mean size ~ Normal(z_centre, z_centre_sd)"),
    ("performance map", "z_centre_sd", 2.0, "its spread"),
    ("performance map", "z_gain", 4.0, "its rise over the references ~ HalfNormal(z_gain)"),
    ("performance map", "ceiling_a", 9.0, "free ceiling: c_j/(1 − d_j) ~ Beta(ceiling_a, ceiling_b)"),
    ("performance map", "ceiling_b", 1.0, "its second shape"),
    ("trend", "slope_sd", 0.3, "A ~ Normal(0, slope_sd), per month"),
    ("trend", "intercept_sd", 2.0, "ln ρ at the targets' mean date ~ Normal(0, intercept_sd)"),
    ("trend", "sigma_v", 0.3, "frontier noise σ_v ~ LogNormal(ln sigma_v, sigma_v_sd)"),
    ("trend", "sigma_v_sd", 0.5, "its log-scale spread"),
    ("trend", "sigma_u", 1.0, "frontier inefficiency σ_u ~ HalfNormal(sigma_u)"),
    ("trend", "sigma_mean", 1.0, "mean/envelope trend σ ~ HalfNormal(sigma_mean)"),
    # 0.5: a release's shared recipe moves its models typically ×1.4 off the trend (prior
    # median 0.34), rarely past ×2.7
    ("trend", "group_sd", 0.5, "release groups: σ_group ~ HalfNormal(group_sd), ln ρ units"),
    ("loss law", "alpha", 0.3, "shared loss-law exponent α_μ ~ LogNormal(ln alpha, alpha_sd)"),
    ("loss law", "alpha_sd", 0.5, "its log-scale spread"),
    ("loss law", "alpha_tau", 0.2, "spread of ln α_j ~ HalfNormal(alpha_tau)"),
    ("loss law", "data_coef", 0.5, "b (with a = 1) ~ LogNormal(ln data_coef, data_coef_sd)"),
    ("loss law", "data_coef_sd", 0.5, "its log-scale spread"),
    ("loss law", "beta", 0.28, "β ~ LogNormal(ln beta, beta_sd) (Chinchilla's 0.28)"),
    ("loss law", "beta_sd", 0.3, "its log-scale spread"),
    ("loss law", "loss_coef", 1.0, "loss mode: a_j ~ LogNormal(ln loss_coef, loss_coef_sd)"),
    ("loss law", "loss_coef_sd", 1.0, "its log-scale spread"),
    ("loss law", "loss_floor", 2.0, "loss mode: irreducible loss E_j ~ HalfNormal(loss_floor)"),
    ("loss law", "sigma_loss", 0.1, "loss mode: observed-loss noise ~ HalfNormal(sigma_loss)"),
    ("loss law", "offset_sd", 1.0, "target offsets: δ_j ~ N(0, offset_sd²) centred, ln-size units"),
    ("likelihood", "phi", 100.0, "targets' overdispersion φ_j ~ LogNormal(ln phi, phi_sd)"),
    ("likelihood", "phi_sd", 1.0, "its log-scale spread"),
    ("likelihood", "phi_reference", 500.0, "references' φ_j ~ LogNormal(ln phi_reference, phi_reference_sd)"),
    ("likelihood", "phi_reference_sd", 1.0, "its log-scale spread"),
    ("likelihood", "outlier_rate", 0.05, "robust: π ~ Beta(outlier_a, outlier_a·(1 − π̄)/π̄), π̄ this"),
    ("likelihood", "outlier_a", 2.0, "the outlier rate's first Beta shape"),
    ("likelihood", "outlier_phi", 2.0, "robust: concentration of the wide outlier component"),
)
COMPONENTS = ("performance map", "trend", "loss law", "likelihood")


def defaults(component: str) -> dict[str, float]:
    """One component's ``default_priors``: its keys and their defaults."""
    return {key: value for c, key, value, _ in TABLE if c == component}


PERFORMANCE_MAP, TREND, LOSS_LAW, LIKELIHOOD = (defaults(c) for c in COMPONENTS)
DEFAULT_PRIORS = {key: value for _, key, value, _ in TABLE}

# the settings a family of fits takes as runtime inputs (model/inputs.py: a sensitivity grid of
# them shares one program); the rest, the hyperpriors' spreads and shapes, are compiled in as
# constants, as they were before they were settings, so the shared program's draws stay 0.2's
# (a variant of one of them fits on a program of its own)
INPUTS = ("slope_sd", "intercept_sd", "sigma_v", "sigma_u", "sigma_mean", "alpha", "alpha_tau",
          "z_centre", "z_centre_sd", "z_gain", "ceiling_a", "ceiling_b", "phi", "phi_reference",
          "data_coef", "beta", "outlier_rate", "offset_sd", "group_sd")
# z_centre is a location; every other setting is a scale, a shape or a median
SIGNED = {"z_centre"}

PriorConfig = make_dataclass(
    "PriorConfig", [(k, float, field(default=DEFAULT_PRIORS[k])) for k in DEFAULT_PRIORS])
PriorConfig.__doc__ = ("Prior settings (model/priors.py has each one's meaning). Units: "
                       "ln(billions) for sizes, months for time.")
PriorConfig.__module__ = __name__
