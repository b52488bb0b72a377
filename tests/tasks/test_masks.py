"""Observation masks: channels, counts and determinism per task and PDE; input validation.

Parametrised over the registry: every PDE's masks come from its observation model
(:meth:`piddm.pdes.PDE.observation_mask`): the steady PDEs (fields ``[a, u]``) keep the
default, the space-time ones (:attr:`piddm.pdes.PDE.time_dependent`, Burgers) override it."""

from __future__ import annotations

import math

import pytest
import torch

from piddm.errors import PiddmError
from piddm.pdes import PDE_REGISTRY, available_pdes, get_pde
from piddm.tasks import (
    make_mask,
    validate_mask,
    validate_observations,
)
from piddm.tasks.masks import sensor_count

S = 16
NODES = S * S
STEADY = [name for name in available_pdes() if not PDE_REGISTRY[name].time_dependent]
SPACE_TIME = [name for name in available_pdes() if PDE_REGISTRY[name].time_dependent]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def counts(mask: torch.Tensor) -> list[list[int]]:
    """Observed nodes per instance and channel."""
    return mask.flatten(2).sum(dim=2).tolist()


@pytest.mark.parametrize("name", STEADY)
@pytest.mark.parametrize("fraction", [0.03, 0.1, 0.5])
def test_2d_tasks_observe_the_right_channels(name: str, fraction: float) -> None:
    pde = get_pde(name, S)
    k = math.floor(fraction * NODES + 0.5)
    a, u = pde.coefficient_channel, pde.solution_channel
    forward = make_mask(pde, "forward", fraction, gen(), n=3)
    inverse = make_mask(pde, "inverse", fraction, gen(), n=3)
    recon = make_mask(pde, "reconstruct", fraction, gen(), n=3)
    for mask in (forward, inverse, recon):
        assert mask.dtype == torch.bool and mask.shape == (3, 2, S, S)
    assert all(c[a] == k and c[u] == 0 for c in counts(forward))
    assert all(c[u] == k and c[a] == 0 for c in counts(inverse))
    assert all(c == [k, k] for c in counts(recon))
    # instances draw different nodes; both channels of a reconstruction differ too
    assert not torch.equal(forward[0], forward[1])
    assert not torch.equal(recon[0, 0], recon[0, 1])


def test_forward_with_full_fraction_observes_the_whole_coefficient() -> None:
    pde = get_pde("darcy", S)
    mask = make_mask(pde, "forward", 1.0, gen())
    assert bool(mask[0, 0].all()) and not bool(mask[0, 1].any())
    inverse = make_mask(pde, "inverse", 1.0, gen())
    assert bool(inverse[0, 1].all()) and not bool(inverse[0, 0].any())


def test_tiny_fraction_observes_at_least_one_node() -> None:
    pde = get_pde("poisson", S)
    assert counts(make_mask(pde, "inverse", 1e-6, gen())) == [[0, 1]]
    assert counts(make_mask(get_pde("burgers", S), "reconstruct", 1e-6, gen())) == [[1]]


@pytest.mark.parametrize("name", SPACE_TIME)
@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.03])
def test_space_time_forward_observes_the_whole_initial_condition(
    name: str, fraction: float
) -> None:
    """The forward problem's input is the initial condition, all of it, whatever the fraction
    (3 % of a 32-node row would be one node: an ill-posed "forward" problem)."""
    mask = make_mask(get_pde(name, S), "forward", fraction, gen(), n=2)
    assert mask.shape == (2, 1, S, S)
    assert int(mask[:, :, 1:].sum()) == 0  # nothing after t = 0
    assert bool(mask[:, 0, 0].all())


def test_masks_come_from_the_pdes_observation_model() -> None:
    """No name branch in the task layer: a PDE that overrides the hook gets its own masks."""

    class Corner(type(get_pde("poisson", S))):  # type: ignore[misc]
        def observation_mask(
            self, task: str, fraction: float, generator: torch.Generator
        ) -> torch.Tensor:
            mask = torch.zeros(2, S, S, dtype=torch.bool)
            mask[1, 0, 0] = True
            return mask

    pde = Corner(S)
    for task in ("forward", "inverse", "reconstruct"):
        assert counts(make_mask(pde, task, 0.5, gen(), n=2)) == [[0, 1], [0, 1]]


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("darcy", ["3 % of a", "3 % of u", "3 % of a, u"]),
        ("burgers", ["u(x, 0), all 16 x", "2 sensors x all t", "3 % of u(x, t)"]),
    ],
)
def test_observation_labels_say_what_is_observed(name: str, labels: list[str]) -> None:
    pde = get_pde(name, S)
    tasks = ("forward", "inverse", "reconstruct")
    assert [pde.observation_label(task, 0.03) for task in tasks] == labels


@pytest.mark.parametrize("name", SPACE_TIME)
@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_space_time_inverse_observes_sensor_columns_at_all_times(
    name: str, resolution: int
) -> None:
    mask = make_mask(get_pde(name, resolution), "inverse", 0.03, gen(), n=4)
    for m in mask[:, 0]:
        columns = m.all(dim=0)
        assert int(columns.sum()) == sensor_count(resolution)
        assert torch.equal(m, columns.expand_as(m))  # whole columns only
    assert not torch.equal(mask[0], mask[1])


def test_sensor_count_scales_with_resolution() -> None:
    assert [sensor_count(s) for s in (16, 32, 64, 128, 256)] == [2, 2, 3, 5, 10]


@pytest.mark.parametrize("name", SPACE_TIME)
def test_space_time_reconstruct_observes_a_fraction_of_all_nodes(name: str) -> None:
    mask = make_mask(get_pde(name, S), "reconstruct", 0.1, gen(), n=2)
    assert counts(mask) == [[26], [26]]
    assert bool(mask[:, :, 1:].any())  # not confined to the initial condition


def test_masks_are_deterministic_given_the_generator() -> None:
    pde = get_pde("helmholtz", S)
    a = make_mask(pde, "reconstruct", 0.1, gen(5), n=2)
    b = make_mask(pde, "reconstruct", 0.1, gen(5), n=2)
    c = make_mask(pde, "reconstruct", 0.1, gen(6), n=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan"), "abc"])
def test_bad_fraction_raises(fraction: object) -> None:
    with pytest.raises(PiddmError, match=r"--obs-fraction must be in \(0, 1\], got"):
        make_mask(get_pde("darcy", S), "forward", fraction, gen())  # type: ignore[arg-type]


def test_bad_task_and_full_reconstruction_raise() -> None:
    pde = get_pde("darcy", S)
    with pytest.raises(PiddmError, match="unknown task 'backward'"):
        make_mask(pde, "backward", 0.1, gen())
    with pytest.raises(PiddmError, match="every node"):
        make_mask(pde, "reconstruct", 1.0, gen())


def test_validate_mask_accepts_numbers_and_single_masks() -> None:
    pde = get_pde("darcy", S)
    single = torch.zeros(2, S, S)
    single[1, 3, 4] = 1.0
    out = validate_mask(single, pde)
    assert out.dtype == torch.bool and out.shape == (1, 2, S, S) and int(out.sum()) == 1


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (torch.ones(1, 1, S, S, dtype=torch.bool), "must have shape"),
        (torch.ones(1, 2, S + 1, S + 1, dtype=torch.bool), "must have shape"),
        (torch.ones(S, S, dtype=torch.bool), "must have shape"),
        (torch.zeros(2, 2, S, S, dtype=torch.bool), "observes no node"),
        (torch.ones(1, 2, S, S, dtype=torch.bool), "observes every node"),
        (torch.full((1, 2, S, S), 0.5), "0 or 1"),
    ],
)
def test_validate_mask_rejects_bad_masks(mask: torch.Tensor, message: str) -> None:
    with pytest.raises(PiddmError, match=message):
        validate_mask(mask, get_pde("darcy", S))


def test_validate_observations_rejects_nan_only_at_observed_nodes() -> None:
    pde = get_pde("darcy", S)
    mask = make_mask(pde, "inverse", 0.1, gen(), n=2)
    obs = torch.full((2, 2, S, S), float("nan"))
    obs[mask] = 1.0
    validate_observations(obs, mask, pde)  # NaN only where unobserved: fine
    index = tuple(torch.nonzero(mask)[0].tolist())
    obs[index] = float("nan")
    with pytest.raises(PiddmError, match="NaN"):
        validate_observations(obs, mask, pde)
    with pytest.raises(PiddmError, match="shape"):
        validate_observations(torch.zeros(2, 1, S, S), mask, pde)
