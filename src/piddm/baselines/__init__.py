"""Inference-time baselines (docs/method.md, "Baselines") on a trained teacher, one signature.

Every sampler is ``sample_x(denoiser, x, sigmas, *, callback=None, pde, settings=None,
mask=None, obs=None)`` (k-diffusion style; D-Flow/ECI take a few more keywords):
``denoiser`` is ``D(x (B, C, S, S), sigma (B,))`` in the PDE's normalised space, ``x`` is
``sigmas[0] * noise``, ``sigmas`` the grid (``settings.sigmas()`` builds the one the settings
describe), ``mask`` (bool, True = observed) and ``obs`` (normalised values) the observations.

==============  =====================================================  ==========================
name            what                                                   NFE per sample
==============  =====================================================  ==========================
diffusionpde    Heun + observation / PDE guidance (Huang et al. 2024)  ``2N - 1``
cocogen         Heun + residual-gradient corrections (Jacobsen et al.)  ``2N - 1``
eci             extrapolate-correct-interpolate (Cheng et al. 2025)     ``N * mixing_steps``
dflow           noise optimisation through the solve (Ben-Hamu 2024)   ``(iters + 1)(2N - 1)`` [*]
==============  =====================================================  ==========================

``N`` is ``settings.num_steps`` (defaults: 2000, 18, 36, 6). [*] Heun solve, Adam or L-BFGS
without line search; L-BFGS with line search (the default) costs at most ``(iters + 2)(2N - 1)``.
Only forward evaluations are counted; DiffusionPDE and D-Flow also back-propagate through
theirs.

:data:`SUPPORTS` says which tasks each method handles; :data:`BASELINES` maps names to
:class:`Baseline` entries (sampler, settings type, per-PDE defaults, NFE formula). At runtime,
pass a :class:`CountingDenoiser` to read the NFE of a run (the samplers count through it).
The PIDM baseline is a training loss and lives with training, not here.

Example::

    entry = BASELINES["eci"]
    settings = entry.defaults(pde, num_steps=50)
    sigmas = settings.sigmas(dtype=torch.float32)
    counter = CountingDenoiser(teacher)
    x = entry.sample(counter, sigmas[0] * noise, sigmas, pde=pde, mask=mask, obs=obs,
                     settings=settings)
    assert counter.nfe == entry.nfe(settings)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from piddm.baselines.cocogen import (
    CoCoGenSettings,
    cocogen_nfe,
    cocogen_settings,
    residual_descent,
    sample_cocogen,
)
from piddm.baselines.constraints import HardConstraints, dirichlet_boundary, hard_constraints
from piddm.baselines.dflow import DFlowSettings, dflow_nfe, dflow_settings, sample_dflow
from piddm.baselines.eci import ECISettings, eci_nfe, eci_settings, sample_eci
from piddm.baselines.guidance import (
    DIFFUSIONPDE_DEFAULTS,
    DiffusionPDESettings,
    diffusionpde_nfe,
    diffusionpde_settings,
    sample_diffusionpde,
)
from piddm.baselines.utils import CountingDenoiser, GridSettings, counting, residual_stiffness

#: Tasks of the benchmark (docs/method.md, "Benchmark"): ``generate``, ``forward``,
#: ``inverse``, ``reconstruct`` (the observation terms act on whichever channels the mask
#: covers, so a method with them handles all three tasks).
TASKS: tuple[str, ...] = ("generate", "forward", "inverse", "reconstruct")


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: sampler, settings type, per-PDE defaults, NFE formula, tasks.

    ``defaults(pde, **overrides)`` returns the settings for a PDE instance (resolution
    included); ``nfe(settings)`` the network evaluations per sample of one run.
    """

    name: str
    sample: Callable[..., torch.Tensor]
    settings_type: type[GridSettings]
    defaults: Callable[..., Any]
    nfe: Callable[[Any], int]
    supports: dict[str, bool]
    reference: str

    def supports_task(self, task: str) -> bool:
        """Whether the method handles ``task`` (one of :data:`TASKS`)."""
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; expected one of {TASKS}")
        return self.supports[task]


#: Which tasks each method supports. DiffusionPDE generates with PDE guidance alone; CoCoGen
#: has no observation terms (generation only); ECI's generation imposes only the Dirichlet
#: boundary (for Burgers it is plain Euler sampling); D-Flow generates by minimising the
#: residual (``lambda_pde > 0``).
SUPPORTS: dict[str, dict[str, bool]] = {
    "diffusionpde": {"generate": True, "forward": True, "inverse": True, "reconstruct": True},
    "cocogen": {"generate": True, "forward": False, "inverse": False, "reconstruct": False},
    "eci": {"generate": True, "forward": True, "inverse": True, "reconstruct": True},
    "dflow": {"generate": True, "forward": True, "inverse": True, "reconstruct": True},
}

BASELINES: dict[str, Baseline] = {
    "diffusionpde": Baseline(
        "diffusionpde",
        sample_diffusionpde,
        DiffusionPDESettings,
        diffusionpde_settings,
        diffusionpde_nfe,
        SUPPORTS["diffusionpde"],
        "Huang et al., DiffusionPDE, NeurIPS 2024 (arXiv 2406.17763)",
    ),
    "cocogen": Baseline(
        "cocogen",
        sample_cocogen,
        CoCoGenSettings,
        cocogen_settings,
        cocogen_nfe,
        SUPPORTS["cocogen"],
        "Jacobsen, Zhuang, Duraisamy, CoCoGen (arXiv 2312.10527)",
    ),
    "eci": Baseline(
        "eci",
        sample_eci,
        ECISettings,
        eci_settings,
        eci_nfe,
        SUPPORTS["eci"],
        "Cheng et al., ECI-sampling, ICLR 2025 (arXiv 2412.01786)",
    ),
    "dflow": Baseline(
        "dflow",
        sample_dflow,
        DFlowSettings,
        dflow_settings,
        dflow_nfe,
        SUPPORTS["dflow"],
        "Ben-Hamu et al., D-Flow, ICML 2024 (arXiv 2402.14017)",
    ),
}

__all__ = [
    "BASELINES",
    "DIFFUSIONPDE_DEFAULTS",
    "SUPPORTS",
    "TASKS",
    "Baseline",
    "CoCoGenSettings",
    "CountingDenoiser",
    "DFlowSettings",
    "DiffusionPDESettings",
    "ECISettings",
    "GridSettings",
    "HardConstraints",
    "cocogen_nfe",
    "cocogen_settings",
    "counting",
    "dflow_nfe",
    "dflow_settings",
    "diffusionpde_nfe",
    "diffusionpde_settings",
    "dirichlet_boundary",
    "eci_nfe",
    "eci_settings",
    "hard_constraints",
    "residual_descent",
    "residual_stiffness",
    "sample_cocogen",
    "sample_dflow",
    "sample_diffusionpde",
    "sample_eci",
]
