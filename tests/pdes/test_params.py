"""PDE parameters and grids are checked on construction: finite numbers within each PDE's
bounds, grids from 8 to MAX_RESOLUTION; the config names the key of a bad parameter."""

from __future__ import annotations

import math

import pytest

from piddm.config import config_from_dict
from piddm.errors import PiddmError
from piddm.pdes import get_pde
from piddm.pdes.base import MAX_RESOLUTION


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("darcy", {"a_low": math.nan}, "parameter a_low of PDE 'darcy' must be a finite number"),
        ("darcy", {"a_high": math.inf}, "must be a finite number, got inf"),
        ("darcy", {"forcing": "x"}, "must be a finite number, got 'x'"),
        ("darcy", {"forcing": True}, "must be a finite number, got True"),
        ("darcy", {"a_low": -1.0}, "parameter a_low of PDE 'darcy' must be > 0, got -1"),
        ("darcy", {"a_low": 13.0}, "a_low of PDE 'darcy' (13) must not exceed a_high (12)"),
        ("burgers", {"nu": 0.0}, "parameter nu of PDE 'burgers' must be > 0, got 0"),
        ("burgers", {"ic_scale": -0.5}, "parameter ic_scale of PDE 'burgers' must be >= 0"),
        ("helmholtz", {"k": -math.inf}, "parameter k of PDE 'helmholtz' must be a finite number"),
    ],
)
def test_bad_parameters_are_refused(name: str, params: dict, message: str) -> None:
    with pytest.raises(PiddmError) as info:
        get_pde(name, 16, **params)
    assert message in str(info.value)


def test_valid_edge_parameters_and_grids_are_accepted() -> None:
    assert get_pde("darcy", 16, a_low=12.0).params["a_low"] == 12.0  # one phase: allowed
    assert get_pde("burgers", 16, ic_scale=0.0).params["ic_scale"] == 0.0
    assert get_pde("helmholtz", 16, k=0.0).params["k"] == 0.0
    assert get_pde("poisson", MAX_RESOLUTION).resolution == MAX_RESOLUTION


def test_grids_beyond_the_maximum_are_refused() -> None:
    with pytest.raises(PiddmError, match=f"resolution must be at most {MAX_RESOLUTION}"):
        get_pde("poisson", MAX_RESOLUTION + 1)


def test_the_config_names_the_parameter_key() -> None:
    raw = {"pde": {"name": "burgers", "resolution": 16, "params": {"nu": -0.1}}}
    with pytest.raises(PiddmError) as info:
        config_from_dict(raw)
    assert str(info.value).startswith("config pde.params: parameter nu of PDE 'burgers'")
