"""Each registered PDE's residual operator converges at its formal order O(h^2) on its
manufactured solution.

For a smooth exact solution ``u*`` and the source ``s*`` that makes it exact for the
continuous PDE (:meth:`piddm.pdes.PDE.manufactured_solution`, provided by the PDE's own file),
the discrete residual ``R_h(u*)`` is the truncation error, ``C h^2``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from piddm.pdes import available_pdes, get_pde

#: Node counts with h = 1/16, 1/32, 1/64 (Burgers: dt = 1/(S-1) likewise).
RESOLUTIONS = (17, 33, 65)


def observed_orders(name: str) -> list[float]:
    """``log2`` of the ratio of successive max-norm residuals of the PDE's manufactured
    solution (:meth:`PDE.manufactured_solution`) over the equation nodes."""
    errors = []
    for resolution in RESOLUTIONS:
        pde = get_pde(name, resolution)
        x, source = pde.manufactured_solution()
        r = pde.residual(x, source=source)[0]
        errors.append(float(r[pde.equation_mask()].abs().max()))
    return [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]


@pytest.mark.parametrize("name", available_pdes())
def test_residual_converges_at_second_order(name: str) -> None:
    orders = observed_orders(name)
    assert all(abs(order - 2.0) <= 0.2 for order in orders), orders


@pytest.mark.parametrize("name", available_pdes())
def test_manufactured_solution_is_a_float64_field_of_the_pde(name: str) -> None:
    pde = get_pde(name, 17)
    x, source = pde.manufactured_solution()
    assert x.shape == (1, pde.num_channels, 17, 17) and x.dtype == torch.float64
    assert source is None or tuple(source.shape) == (17, 17)


def test_a_first_order_error_would_be_caught() -> None:
    """Sanity check of the test itself: a one-sided difference shows order ~1, not 2."""
    errors = []
    for resolution in RESOLUTIONS:
        h = 1.0 / (resolution - 1)
        x = torch.linspace(0.0, 1.0, resolution, dtype=torch.float64)
        forward = (torch.sin(x[1:]) - torch.sin(x[:-1])) / h
        errors.append(float((forward - torch.cos(x[:-1])).abs().max()))
    order = math.log2(errors[0] / errors[1])
    assert abs(order - 1.0) < 0.2
    assert np.isfinite(order)
