"""Latent optimisation (docs/method.md, "Tasks") on a linear generator and a tiny random U-Net.

The linear generator ``G(eps) = W * eps`` (a fixed 3x3 convolution) reproduces observations
made from ``G(eps_true)`` exactly, so the optimiser must drive the data term to ~0. The tiny
EDM U-Net (random output layer, so ``G`` is not trivially linear) is a cheap real student:
refinement must lower its PDE residual.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from helpers import tiny_unet
from piddm.data.generate import sample_seed
from piddm.diffusion import EDMPrecond
from piddm.diffusion.utils import randn
from piddm.distill import one_step_generator
from piddm.errors import PiddmError
from piddm.models import load_pretrained
from piddm.pdes import PDE, get_pde
from piddm.sampling import StudentSampler, make_sampler, measured_nfe, pde_of, residual_norm_of
from piddm.tasks import (
    LatentOptConfig,
    make_mask,
    one_step,
    optimise_latents,
    refine,
    solve_task,
)
from piddm.tasks.latent import GAUSS_NEWTON_CONFIG, REFINE_CONFIG, refine_counted

S = 16


class LinearGenerator(nn.Module):
    """``G(eps) = conv3x3(eps, W)`` with a fixed random ``W``: normalised fields from latents."""

    def __init__(self, channels: int, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", 0.3 * torch.randn(channels, channels, 3, 3, generator=gen))

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(eps, self.weight.to(eps.dtype), padding=1)


def tiny_student(channels: int, seed: int = 0) -> nn.Module:
    """A 16^2 EDM U-Net with random weights (its zero-initialised output layer randomised)."""
    torch.manual_seed(seed)
    net = tiny_unet(channels, num_groups=4)
    nn.init.normal_(net.conv_out.weight, std=0.1)
    return EDMPrecond(net)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear_truth(pde: PDE, g: nn.Module, n: int, seed: int = 7) -> torch.Tensor:
    """Physical fields ``(n, C, S, S)`` in the range of ``g`` (latents on the sphere)."""
    eps = torch.randn(n, pde.num_channels, S, S, generator=gen(seed))
    eps = eps * math.sqrt(eps[0].numel()) / eps.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    with torch.no_grad():
        return pde.normalisation.denormalise(g(eps))


def physical_residual(pde: PDE, g: nn.Module, eps: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        x = g(eps).to(torch.float64)
    return pde.normalised_residual(pde.normalisation.denormalise(x))


def check_observed_exactly(result, obs: torch.Tensor, mask: torch.Tensor) -> None:
    """Estimate == observations bit for bit and std == 0 at observed nodes; std > 0 elsewhere."""
    assert result.estimate.shape == obs.shape and result.std.shape == obs.shape
    assert result.estimate.dtype == obs.dtype
    assert torch.equal(result.estimate[mask], obs[mask])
    assert bool((result.std[mask] == 0).all())
    assert bool((result.std[~mask] > 0).all())
    assert bool(torch.isfinite(result.estimate).all())


# ------------------------------------------------------------------ analytic generator


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_fits_observations_of_a_linear_generator(dtype: torch.dtype) -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=2).to(dtype)
    mask = make_mask(pde, "reconstruct", 0.1, gen(0), n=2)
    config = LatentOptConfig(steps=150, lr=0.05, lambda_infer=0.0, ensemble=3, candidates=0)
    result = optimise_latents(g, pde, truth, mask, config, rng=gen(1), return_samples=True)

    initial = float(result.history[0])
    assert float(result.data_misfit.max()) < 1e-3 * initial
    assert float(result.history[-1]) < float(result.history[0])
    check_observed_exactly(result, truth, mask)
    assert result.samples is not None and result.samples.shape == (2, 3, 2, S, S)
    assert result.latents.shape == (2, 3, 2, S, S)
    assert result.objective.shape == result.residual.shape == (2, 3)
    assert result.nfe == 3 * (150 + 1) and result.nfe_backward == 3 * 150
    assert result.seconds_per_instance > 0
    norms = result.latents.flatten(2).norm(dim=2)  # projection keeps |eps| = sqrt(d)
    torch.testing.assert_close(norms, torch.full_like(norms, math.sqrt(2 * S * S)))


def test_lbfgs_fits_observations_of_a_linear_generator() -> None:
    pde = get_pde("poisson", S)
    g = LinearGenerator(2, seed=1)
    truth = linear_truth(pde, g, n=1)
    mask = make_mask(pde, "inverse", 0.1, gen(0))
    config = LatentOptConfig(
        steps=25, lr=1.0, lambda_infer=0.0, ensemble=2, optimizer="lbfgs", candidates=0
    )
    result = optimise_latents(g, pde, truth, mask, config, rng=gen(1))
    assert float(result.data_misfit.max()) < 1e-3 * float(result.history[0])
    check_observed_exactly(result, truth, mask)
    assert result.nfe >= 2 * 26  # line searches may evaluate more than once per step


def test_lbfgs_keeps_descending_after_a_failed_line_search_of_a_real_student() -> None:
    """torch's L-BFGS retries a failed line search (step length 0) forever: on this Darcy
    inverse problem the shipped student's J froze within 10 steps; a fresh start moves on."""
    student, metadata = load_pretrained("darcy-32-piddm")
    pde = pde_of(metadata)
    truth = torch.from_numpy(pde.generate(sample_seed(4242, 0))[None])
    mask = make_mask(pde, "inverse", 0.03, gen(0))
    config = LatentOptConfig(
        steps=30, ensemble=4, candidates=0, optimizer="lbfgs", projection=False, penalty=1.0, lr=1.0
    )
    result = optimise_latents(one_step(student), pde, truth, mask, config, rng=gen(3))
    assert float(result.history[-1]) < 0.8 * float(result.history[10]), result.history


class ConstantGenerator(nn.Module):
    """``G(eps) = 0 * eps + 1``: every latent is already optimal (zero gradient)."""

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return 0 * eps + 1


def test_lbfgs_stops_when_even_a_fresh_start_cannot_move() -> None:
    pde = get_pde("poisson", S)
    truth = torch.ones(1, pde.num_channels, S, S, dtype=torch.float64)
    mask = make_mask(pde, "inverse", 0.1, gen(0))
    config = LatentOptConfig(
        steps=20, ensemble=2, candidates=0, optimizer="lbfgs", lambda_infer=0.0, projection=False
    )
    result = optimise_latents(ConstantGenerator(), pde, truth, mask, config, rng=gen(1))
    assert result.nfe == 2 * (2 + 1)  # a stalled step, a stalled fresh start, the final pass
    assert bool((result.history == result.history[0]).all())


def test_penalty_instead_of_projection_fits_and_keeps_latents_typical() -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=1)
    mask = make_mask(pde, "forward", 0.2, gen(0))
    config = LatentOptConfig(
        steps=150, lambda_infer=0.0, ensemble=2, projection=False, penalty=1.0, candidates=0
    )
    result = optimise_latents(g, pde, truth, mask, config, rng=gen(1))
    assert float(result.data_misfit.max()) < 1e-2 * float(result.history[0])
    norms = result.latents.flatten(2).norm(dim=2) / math.sqrt(2 * S * S)
    assert bool(((norms - 1).abs() < 0.1).all())


def test_chunking_does_not_change_the_result() -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=3)
    mask = make_mask(pde, "reconstruct", 0.05, gen(0), n=3)
    base = LatentOptConfig(steps=20, lambda_infer=1e-2, ensemble=2, candidates=0)
    whole = optimise_latents(g, pde, truth, mask, base, rng=gen(4))
    chunked = optimise_latents(
        g, pde, truth, mask, LatentOptConfig(**{**base.__dict__, "batch_size": 4}), rng=gen(4)
    )
    torch.testing.assert_close(chunked.estimate, whole.estimate, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(chunked.history, whole.history, rtol=1e-4, atol=1e-6)


def linear_matrix(g: nn.Module, channels: int) -> torch.Tensor:
    """The matrix ``A`` ``(d, d)`` float64 of the linear generator: ``G(eps) = A eps``."""
    d = channels * S * S
    basis = torch.eye(d, dtype=torch.float64).view(d, channels, S, S)
    with torch.no_grad():
        return g(basis).flatten(1).T


def min_norm_fit(a: torch.Tensor, eps0: torch.Tensor, y: torch.Tensor, index: torch.Tensor):
    """``argmin |eps - eps0|`` subject to ``(A eps)[index] = y``, by dense algebra."""
    a_o = a[index]
    flat = eps0.flatten().to(torch.float64)
    correction = a_o.T @ torch.linalg.solve(a_o @ a_o.T, a_o @ flat - y)
    return (flat - correction).view(eps0.shape)


GN = replace(GAUSS_NEWTON_CONFIG, ensemble=3, steps=8, damping=1e-6)


@pytest.mark.parametrize("task", ["inverse", "reconstruct"])
def test_gauss_newton_takes_the_minimum_norm_step_of_a_linear_generator(task: str) -> None:
    """For ``G(eps) = A eps`` each member ends at the latent nearest its start that fits the
    observations exactly (randomise-then-optimise), whatever the chunking."""
    pde = get_pde("poisson", S)
    g = LinearGenerator(2, seed=3)
    truth = linear_truth(pde, g, n=2).to(torch.float64)
    mask = make_mask(pde, task, 0.05, gen(0), n=2)
    result = optimise_latents(g, pde, truth, mask, GN, rng=gen(1))
    # the starting draws: float32, the generator's dtype (it has no parameters)
    draws = randn((2 * GN.ensemble, 2, S, S), gen(1), torch.empty(())).double()
    a = linear_matrix(g, 2)
    target = pde.normalisation.normalise(truth)
    for i in range(2):
        index = torch.nonzero(mask[i].flatten()).squeeze(1)
        y = target[i].flatten()[index]
        for b in range(GN.ensemble):
            expected = min_norm_fit(a, draws[i * GN.ensemble + b], y, index)
            torch.testing.assert_close(result.latents[i, b].double(), expected, rtol=0, atol=1e-4)
    assert float(result.data_misfit.max()) < 1e-8
    assert float(result.history[-1]) < 1e-6 * float(result.history[0])
    check_observed_exactly(result, truth, mask)
    observed = mask.flatten(1).sum(dim=1).double().mean()
    assert result.nfe == GN.ensemble * (GN.steps + 1) + 1
    assert result.nfe_backward == pytest.approx(float(observed))
    one_per_chunk = replace(GN, batch_size=1)  # every chunk still holds a whole instance
    chunked = optimise_latents(g, pde, truth, mask, one_per_chunk, rng=gen(1))
    torch.testing.assert_close(chunked.estimate, result.estimate, rtol=1e-6, atol=1e-6)


def test_gauss_newton_members_average_to_the_posterior_mean_of_a_linear_generator() -> None:
    """From prior draws the members are draws of the latent posterior, so their mean tends to
    the posterior mean ``A_o^T (A_o A_o^T)^-1 y`` (here within 5 standard errors)."""
    pde = get_pde("poisson", S)
    g = LinearGenerator(2, seed=5)
    truth = linear_truth(pde, g, n=1).to(torch.float64)
    mask = make_mask(pde, "inverse", 0.05, gen(2))
    config = replace(GN, ensemble=400, steps=4)
    result = optimise_latents(g, pde, truth, mask, config, rng=gen(3))
    a = linear_matrix(g, 2)
    index = torch.nonzero(mask[0].flatten()).squeeze(1)
    y = pde.normalisation.normalise(truth)[0].flatten()[index]
    mean = min_norm_fit(a, torch.zeros(2, S, S, dtype=torch.float64), y, index)
    members = result.latents[0]
    error = (members.mean(dim=0) - mean).abs() / (members.std(dim=0) / 20 + 1e-12)
    assert float(error.max()) < 5.0
    assert float(members.std(dim=0).mean()) > 0.5  # still spread: a posterior, not a point


def test_gauss_newton_fits_a_nonlinear_student() -> None:
    pde = get_pde("darcy", S)
    student = one_step(tiny_student(2, seed=4))
    truth = linear_truth(pde, student, n=1)  # in the student's range
    mask = make_mask(pde, "reconstruct", 0.05, gen(0))
    config = replace(GAUSS_NEWTON_CONFIG, ensemble=2, steps=6)
    result = optimise_latents(student, pde, truth, mask, config, rng=gen(1))
    # The member whose start the Jacobian is taken at converges fast; the other descends
    # more slowly, at the rate the frozen Jacobian allows (a random net is far from linear).
    first = float(result.history[0])
    assert float(result.data_misfit[0, 0]) < 1e-2 * first
    assert float(result.data_misfit[0, 1]) < 0.5 * first
    assert bool((result.history[1:] < result.history[:-1]).all())
    check_observed_exactly(result, truth, mask)


def test_gauss_newton_refuses_a_physics_term_and_refinement() -> None:
    with pytest.raises(PiddmError, match="fits the observations only"):
        LatentOptConfig(optimizer="gauss-newton")  # lambda_infer 0.1 by default
    with pytest.raises(PiddmError, match="fits the observations only"):
        replace(GAUSS_NEWTON_CONFIG, penalty=1.0)
    with pytest.raises(PiddmError, match="damping"):
        replace(GAUSS_NEWTON_CONFIG, damping=0.0)
    with pytest.raises(PiddmError, match="no observations to fit"):
        refine(
            LinearGenerator(2), get_pde("darcy", S), torch.randn(1, 2, S, S), GAUSS_NEWTON_CONFIG
        )


def test_candidates_keep_the_lowest_initial_objectives_of_the_same_draws() -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=2)
    mask = make_mask(pde, "forward", 0.1, gen(0), n=2)
    # Each instance draws its 6 candidates in turn from the one stream: score them alike.
    rng, unscreened = gen(1), LatentOptConfig(steps=0, lambda_infer=1e-2, ensemble=6, candidates=0)
    every = torch.cat(
        [
            optimise_latents(
                g, pde, truth[i : i + 1], mask[i : i + 1], unscreened, rng=rng
            ).objective
            for i in range(2)
        ]
    )
    config = LatentOptConfig(steps=0, lambda_infer=1e-2, ensemble=2, candidates=6)
    kept = optimise_latents(g, pde, truth, mask, config, rng=gen(1))
    lowest = every.sort(dim=1).values[:, :2]
    torch.testing.assert_close(kept.objective.sort(dim=1).values, lowest)
    assert kept.nfe == 6 + 2  # every candidate screened once, then the kept ones evaluated


def test_candidates_up_to_the_ensemble_size_screen_nothing() -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=2)
    mask = make_mask(pde, "forward", 0.1, gen(0), n=2)
    plain = optimise_latents(
        g, pde, truth, mask, LatentOptConfig(steps=2, ensemble=3, candidates=0), rng=gen(1)
    )
    for k in (2, 3):
        config = LatentOptConfig(steps=2, ensemble=3, candidates=k)
        same = optimise_latents(g, pde, truth, mask, config, rng=gen(1))
        assert torch.equal(same.estimate, plain.estimate) and same.nfe == plain.nfe


def test_candidates_lower_the_error_of_a_short_optimisation() -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=4)
    mask = make_mask(pde, "forward", 0.05, gen(0), n=4)

    def misfit(candidates: int) -> float:
        config = LatentOptConfig(steps=5, lambda_infer=0.0, ensemble=2, candidates=candidates)
        return float(optimise_latents(g, pde, truth, mask, config, rng=gen(1)).data_misfit.mean())

    assert misfit(64) < misfit(0)


# ----------------------------------------------------------------------- tiny U-Net


def test_tasks_with_a_tiny_student_honour_observations_and_are_deterministic() -> None:
    pde = get_pde("darcy", S)
    g = one_step(tiny_student(2))
    truth = torch.stack([torch.from_numpy(pde.generate(s)) for s in range(2)]).float()
    config = LatentOptConfig(steps=5, ensemble=3, candidates=0)
    mask, first = solve_task(g, pde, truth, "forward", 0.1, config, rng=gen(3))
    assert mask.shape == truth.shape and int(mask[:, 1].sum()) == 0
    check_observed_exactly(first, truth, mask)

    _, again = solve_task(g, pde, truth, "forward", 0.1, config, rng=gen(3))
    assert torch.equal(again.estimate, first.estimate) and torch.equal(again.std, first.std)
    _, other = solve_task(g, pde, truth, "forward", 0.1, config, rng=gen(4))
    assert not torch.equal(other.estimate, first.estimate)

    # values at unobserved nodes are never read: NaN there gives the same answer
    hidden = torch.where(mask, truth, torch.full_like(truth, float("nan")))
    from_hidden = optimise_latents(g, pde, hidden, mask, config, rng=gen(3))
    from_truth = optimise_latents(g, pde, truth, mask, config, rng=gen(3))
    assert torch.equal(from_hidden.estimate, from_truth.estimate)


@pytest.mark.parametrize("pde_name", ["darcy", "poisson"])
@pytest.mark.parametrize("task", ["forward", "inverse"])
def test_solver_members_are_the_solvers_fields_and_keep_the_observations(
    pde_name: str, task: str
) -> None:
    pde = get_pde(pde_name, S)
    g = one_step(tiny_student(2))
    truth = torch.stack([torch.from_numpy(pde.generate(s)) for s in range(2)])
    config = LatentOptConfig(steps=2, ensemble=2, candidates=0, solver_members=True)
    mask, result = solve_task(g, pde, truth, task, 0.1, config, rng=gen(1), return_samples=True)
    assert torch.equal(result.estimate[mask], truth[mask])
    assert bool((result.std[mask] == 0).all()) and bool(torch.isfinite(result.std).all())
    assert result.samples is not None
    members = result.samples.flatten(0, 1).numpy()
    observed = mask.repeat_interleave(2, dim=0).numpy()
    observed_truth = truth.repeat_interleave(2, dim=0).numpy()
    for member, where, exact in zip(members, observed, observed_truth, strict=True):
        assert np.array_equal(member[where], exact[where])
        solved = pde.solve(pde.admissible_inputs(pde.inputs_of(member)))
        free = ~where
        assert np.abs(member[free] - solved[free]).max() <= 1e-12 * np.abs(solved).max()
    if task == "forward":  # nothing of the solution is observed: exact discrete solutions
        assert float(result.residual.max()) < 1e-12
    plain = LatentOptConfig(steps=2, ensemble=2, candidates=0)
    _, student_only = solve_task(g, pde, truth, task, 0.1, plain, rng=gen(1), mask=mask)
    assert float(student_only.residual.min()) > 1e-3


def test_burgers_inverse_task_shapes_and_exact_sensors() -> None:
    pde = get_pde("burgers", S)
    g = one_step(tiny_student(1))
    truth = torch.from_numpy(pde.generate(0)).float().unsqueeze(0)
    mask, result = solve_task(
        g,
        pde,
        truth,
        "inverse",
        0.03,
        LatentOptConfig(steps=3, ensemble=2, candidates=0),
        rng=gen(0),
    )
    assert result.estimate.shape == result.std.shape == (1, 1, S, S)
    check_observed_exactly(result, truth, mask)


def test_refinement_lowers_the_residual_of_a_fixed_batch() -> None:
    pde = get_pde("darcy", S)
    g = one_step(tiny_student(2))
    eps = torch.randn(4, 2, S, S, generator=gen(1))
    before = physical_residual(pde, g, eps)
    refined = refine(g, pde, eps, LatentOptConfig(steps=10))
    after = physical_residual(pde, g, refined)
    assert refined.shape == eps.shape and refined.dtype == eps.dtype
    assert bool((after < 0.5 * before).all()), (before, after)
    lbfgs = refine(g, pde, eps, LatentOptConfig(steps=5, lr=1.0, optimizer="lbfgs"))
    assert bool((physical_residual(pde, g, lbfgs) < before).all())


def test_refinement_has_one_set_of_defaults() -> None:
    """``refine``'s defaults are ``piddm sample --refine K``'s, which sets only ``K`` and the
    physics term the student was trained with."""
    model, metadata = load_pretrained("darcy-32-piddm")
    pde = pde_of(metadata)
    generator = one_step_generator(model, metadata)
    eps = torch.randn(1, 2, pde.resolution, pde.resolution, generator=gen(0))
    sampler, _ = make_sampler(model, metadata, pde, refine=2)
    config = replace(REFINE_CONFIG, steps=2, residual_norm=residual_norm_of(metadata))
    with torch.no_grad():
        expected = generator(refine(generator, pde, eps, config))
    assert torch.equal(sampler(eps), expected)
    g = one_step(tiny_student(2))
    eps = torch.randn(2, 2, S, S, generator=gen(1))
    darcy = get_pde("darcy", S)
    assert torch.equal(refine(g, darcy, eps), refine(g, darcy, eps, REFINE_CONFIG))


def test_refinement_cost_is_measured() -> None:
    """The sampler's NFE is what the refinement spent: Adam exactly ``2K + 2`` passes per
    sample (K forward and backward, the final objective, the output), L-BFGS at least
    ``4K + 2`` (a gradient and a line-search trial per step)."""
    pde = get_pde("darcy", S)
    g = one_step(tiny_student(2))
    eps = torch.randn(3, 2, S, S, generator=gen(1))
    adam = StudentSampler(g, pde, LatentOptConfig(steps=4))
    assert adam.nfe == 10.0  # before a call: the least the settings cost
    adam(eps)
    assert adam.nfe == 10.0
    lbfgs = StudentSampler(g, pde, LatentOptConfig(steps=4, lr=1.0, optimizer="lbfgs"))
    lbfgs(eps)
    _, passes = refine_counted(g, pde, eps, LatentOptConfig(steps=4, lr=1.0, optimizer="lbfgs"))
    assert lbfgs.nfe == 1.0 + passes >= 18.0
    one = StudentSampler(g, pde, LatentOptConfig(steps=0))
    one(eps)
    assert one.nfe == measured_nfe(one, 99) == 1.0


def test_preconditioned_refinement_lowers_the_solution_error() -> None:
    """The latent objective with ``residual_norm="preconditioned"`` descends ``|u - u*(a)|``."""
    pde = get_pde("poisson", S)
    g = one_step(tiny_student(2))
    eps = torch.randn(4, 2, S, S, generator=gen(1))

    def solution_error(latents: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = pde.normalisation.denormalise(g(latents).double())
        return pde.preconditioned_residual(x)

    config = LatentOptConfig(steps=10, lambda_infer=1.0, residual_norm="preconditioned")
    refined = refine(g, pde, eps, config)
    assert bool((solution_error(refined) < 0.5 * solution_error(eps)).all())


class ModeRecorder(LinearGenerator):
    """A linear generator that records its train/eval mode at every call."""

    def __init__(self) -> None:
        super().__init__(2)
        self.modes: list[bool] = []

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return super().forward(eps)


def test_generator_runs_in_eval_mode_and_its_mode_is_restored() -> None:
    pde = get_pde("darcy", S)
    recorder = ModeRecorder().train()
    frozen = nn.Dropout()  # a submodule deliberately left in eval mode
    recorder.extra = frozen.eval()
    refine(recorder, pde, torch.randn(1, 2, S, S, generator=gen(0)), LatentOptConfig(steps=2))
    assert recorder.modes == [False, False, False]
    assert recorder.training and not frozen.training
    student = tiny_student(2).train()
    refine(one_step(student), pde, torch.randn(1, 2, S, S), LatentOptConfig(steps=1))
    assert student.training


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": -1},
        {"steps": 1.5},
        {"lr": 0.0},
        {"lambda_infer": -1.0},
        {"ensemble": 0},
        {"optimizer": "sgd"},
        {"penalty": -0.1},
        {"batch_size": 0},
        {"candidates": -1},
        {"solver_members": 1},
        {"residual_norm": "l1"},
    ],
)
def test_bad_config_raises(kwargs: dict) -> None:
    with pytest.raises(PiddmError):
        LatentOptConfig(**kwargs)


def test_bad_masks_and_observations_raise() -> None:
    pde = get_pde("darcy", S)
    g = LinearGenerator(2)
    truth = linear_truth(pde, g, n=1)
    config = LatentOptConfig(steps=1, ensemble=1, candidates=0)
    with pytest.raises(PiddmError, match="observes no node"):
        optimise_latents(g, pde, truth, torch.zeros_like(truth, dtype=torch.bool), config)
    with pytest.raises(PiddmError, match="must have shape"):
        optimise_latents(g, pde, truth, torch.ones(1, 1, S, S, dtype=torch.bool), config)
    mask = make_mask(pde, "inverse", 0.1, gen(0))
    bad = truth.clone()
    bad[mask] = float("nan")
    with pytest.raises(PiddmError, match="NaN"):
        optimise_latents(g, pde, bad, mask, config)
    with pytest.raises(PiddmError, match="obs-fraction"):
        solve_task(g, pde, truth, "forward", 2.0, config, rng=gen(0))


def test_library_defaults_are_piddm_solves() -> None:
    """An API user gets the settings ``piddm solve`` measured best, not older ones."""
    from piddm.commands.solve import command

    flags = {p.name: p.default for p in command.params}
    defaults = LatentOptConfig()
    names = ("ensemble", "candidates", "steps", "lr", "lambda_infer", "solver_members")
    for name in (*names, "residual_norm"):
        assert flags[name] == getattr(defaults, name), name
