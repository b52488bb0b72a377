"""Config loading: round trips, and one-line errors that name the key for every mistake."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from piddm.bench.config import BuildConfig, GenerateConfig, TasksConfig
from piddm.config import (
    Config,
    DataConfig,
    DiffusionConfig,
    DistillConfig,
    NetConfig,
    OptimConfig,
    PDEConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
    replace_settings,
)
from piddm.diffusion import karras_sigmas, schedules
from piddm.distill.pairs import PairSettings
from piddm.errors import PiddmError
from piddm.nets import UNetConfig
from piddm.tasks import LatentOptConfig
from piddm.tasks.latent import REFINE_CONFIG

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIG_FILES = [p for p in sorted(CONFIG_DIR.glob("*.yaml")) if not p.name.startswith("bench-")]


def minimal(**sections: object) -> dict:
    return {"pde": {"name": "darcy", "resolution": 16}, **sections}


def error_of(data: dict) -> str:
    with pytest.raises(PiddmError) as info:
        config_from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_and_minimal_config():
    cfg = config_from_dict(minimal())
    assert cfg.kind == "teacher"
    assert cfg.diffusion.sigma_data == 0.5 and cfg.diffusion.sigma_max == 80.0
    assert cfg.diffusion.steps == 18 and cfg.diffusion.rho == 7.0
    assert cfg.loss.residual_weight == 0.0
    assert cfg.net.channel_mult == (1, 2, 2)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_shipped_configs_load_and_round_trip(path: Path):
    cfg = load_config(path)
    data = config_to_dict(cfg)
    assert config_from_dict(data) == cfg
    assert config_from_dict(json.loads(json.dumps(data))) == cfg  # through config.json
    assert config_from_dict(yaml.safe_load(yaml.safe_dump(data))) == cfg


def test_round_trip_with_every_kind_of_value():
    data = minimal(
        data={"path": "x.h5", "n": 10, "seed": 4, "n_holdout": 2},
        net={"channel_mult": [1, 2], "embedding_dim": 64, "dropout": 0.1},
        optim={"betas": [0.8, 0.99], "grad_clip": None},
    )
    data["pde"]["params"] = {"forcing": 2.0}
    cfg = config_from_dict(data)
    assert cfg.optim.betas == (0.8, 0.99) and cfg.optim.grad_clip is None
    assert cfg.pde.params == {"forcing": 2.0}
    assert config_from_dict(config_to_dict(cfg)) == cfg
    assert isinstance(config_to_dict(cfg)["net"]["channel_mult"], list)


def test_numbers_are_coerced_sensibly():
    cfg = config_from_dict(minimal(optim={"lr": "1e-3", "eps": 1}, train={"steps": 100.0}))
    assert cfg.optim.lr == 1e-3 and isinstance(cfg.optim.eps, float)
    assert cfg.train.steps == 100 and isinstance(cfg.train.steps, int)


def test_load_config_with_overrides(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal(train={"steps": 5})))
    cfg = load_config(path, {"train.steps": 7, "optim": {"lr": 0.01}, "net.attention": False})
    assert cfg.train.steps == 7 and cfg.optim.lr == 0.01 and cfg.net.attention is False
    assert cfg.replace({"train.seed": 9}).train.seed == 9
    with pytest.raises(
        PiddmError, match=r"config train\.stepz: unknown key \(did you mean 'steps'\?\)"
    ):
        load_config(path, {"train.stepz": 1})


def test_direct_construction_matches_loader():
    cfg = Config(pde=PDEConfig(name="darcy", resolution=16), data=DataConfig(path="a.h5"))
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(optim={"lrr": 1}), r"config optim.lrr: unknown key (did you mean 'lr'?)"),
        (minimal(optm={}), r"config optm: unknown key (did you mean 'optim'?)"),
        (minimal(train={"check_every": 1}), "config train.check_every: unknown key (did you mean"),
        (minimal(net={"wibble": 1}), "config net.wibble: unknown key; known keys:"),
    ],
)
def test_unknown_keys_with_suggestions(data, expected):
    assert error_of(data).startswith(expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(optim={"lr": "abc"}), "config optim.lr: expected a positive number, got 'abc'"),
        (
            minimal(train={"steps": "ten"}),
            "config train.steps: expected a positive integer, got 'ten'",
        ),
        (
            minimal(train={"steps": True}),
            "config train.steps: expected a positive integer, got True",
        ),
        (minimal(train={"steps": 2.5}), "config train.steps: expected a positive integer, got 2.5"),
        (
            minimal(net={"attention": "yes"}),
            "config net.attention: expected true or false, got 'yes'",
        ),
        (minimal(net={"channel_mult": 2}), "config net.channel_mult: expected a list of integers"),
        (
            minimal(net={"channel_mult": [1, "x"]}),
            "config net.channel_mult[1]: expected an integer",
        ),
        (minimal(optim={"betas": [0.9]}), "config optim.betas: expected a list of 2 numbers"),
        (minimal(train={"desc": 5}), "config train.desc: expected a string, got 5"),
        (minimal(optim=[1, 2]), "config optim: expected a mapping, got [1, 2]"),
        (
            {"pde": {"name": "darcy", "resolution": "big"}},
            "config pde.resolution: expected an integer",
        ),
        (minimal(kind="student"), "config kind: expected one of ['teacher'"),
    ],
)
def test_wrong_types(data, expected):
    assert error_of(data).startswith(expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(optim={"lr": -1}), "config optim.lr: expected a positive number, got -1"),
        (minimal(optim={"lr": 0}), "config optim.lr: expected a positive number, got 0"),
        (minimal(optim={"ema_decay": 1.0}), "config optim.ema_decay: expected a number in [0, 1)"),
        (minimal(net={"dropout": 1.5}), "config net.dropout: expected a number in [0, 1), got 1.5"),
        (minimal(train={"steps": 0}), "config train.steps: expected a positive integer, got 0"),
        (
            minimal(optim={"grad_clip": -1}),
            "config optim.grad_clip: expected a positive number or null",
        ),
        (
            minimal(loss={"residual_weight": -0.1}),
            "config loss.residual_weight: expected a non-negative",
        ),
        (
            minimal(optim={"betas": [0.9, 1.0]}),
            "config optim.betas[1]: expected a number in [0, 1)",
        ),
        (
            {"pde": {"name": "darcy", "resolution": 4}},
            "config pde.resolution: expected an integer >= 8",
        ),
        (
            minimal(diffusion={"steps": 1}),
            "config diffusion.steps: expected an integer >= 2, got 1",
        ),
    ],
)
def test_out_of_range(data, expected):
    assert error_of(data).startswith(expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(diffusion={"sigma_min": 100}), "config diffusion.sigma_min: 100 must be below"),
        (minimal(net={"in_channels": 3}), "config net.in_channels: 3 does not match PDE 'darcy'"),
        (minimal(net={"out_channels": 1}), "config net.out_channels: 1 does not match"),
        (
            minimal(net={"base_channels": 12, "num_groups": 8}),
            "config net.num_groups: 8 does not divide",
        ),
        (
            {"pde": {"name": "darcy", "resolution": 18}, "net": {"channel_mult": [1, 2, 2]}},
            "config net.channel_mult: 3 levels halve the grid 2 times",
        ),
        (minimal(data={"n": 10, "n_holdout": 10}), "config data.n_holdout: 10 leaves no training"),
        (minimal(train={"desc": "a b"}), "config train.desc: expected a non-empty name"),
        (
            minimal(distill={"std_weight": 1.0}, optim={"batch_size": 1}),
            "config distill.std_weight: the spread term needs optim.batch_size >= 2",
        ),
        (
            {"pde": {"name": "darcu"}},
            "config pde.name: unknown PDE 'darcu' (did you mean 'darcy'?)",
        ),
        (
            {"pde": {"name": "darcy", "params": {"k": 1.0}}},
            "config pde.params: unknown parameter(s) ['k'] for PDE 'darcy'",
        ),
        ({"data": {}}, "config pde: required key missing"),
        ({"pde": {"resolution": 16}}, "config pde.name: required key missing"),
    ],
)
def test_inconsistent_or_missing_settings(data, expected):
    assert error_of(data).startswith(expected)


def test_file_errors(tmp_path: Path):
    with pytest.raises(PiddmError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pde:\n  name: darcy\n   resolution: [16\n")
    with pytest.raises(PiddmError, match=r"config .*bad.yaml: .*line \d+"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(PiddmError, match="expected a mapping of sections"):
        load_config(scalar)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(diffusion={"P_mean": float("nan")}), "config diffusion.P_mean: expected a finite"),
        (minimal(optim={"betas": [0.9, float("inf")]}), "config optim.betas[1]: expected a finite"),
        (
            minimal(pde={"name": "darcy", "params": {"forcing": float("nan")}}),
            "config pde.params.forcing",
        ),
        (minimal(train={"steps": 2**63}), "config train.steps: 9223372036854775808 is too large"),
        (
            minimal(net={"channel_mult": [1, 2**64]}),
            "config net.channel_mult[1]: 18446744073709551616",
        ),
    ],
)
def test_non_finite_numbers_and_integers_beyond_int64_are_refused(data, expected):
    assert error_of(data).startswith(expected)


def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 5000)
    with pytest.raises(PiddmError, match="nested too deeply"):
        load_config(deep)


def test_net_section_is_the_unet_config():
    """One definition: the ``net`` keys are ``UNetConfig``'s fields with its defaults, and a
    section builds the network's config, with the PDE's channels where it names none."""
    assert [f.name for f in dataclasses.fields(NetConfig)] == [
        f.name for f in dataclasses.fields(UNetConfig)
    ]
    assert NetConfig().unet(2) == UNetConfig(in_channels=2)
    net = config_from_dict(minimal(net={"base_channels": 16, "channel_mult": [1, 2]})).net
    assert net.unet(2) == UNetConfig(in_channels=2, base_channels=16, channel_mult=(1, 2))
    assert NetConfig(in_channels=3, out_channels=1).unet(2).out_channels == 1


def test_bench_settings_default_to_their_one_definition():
    """A bench setting left unset is the library's: the latent optimisation's, PIDDM-ref's,
    the teacher's sampler's and the student's."""
    tasks = TasksConfig()
    for name in ("ensemble", "steps", "lr", "lambda_infer", "optimizer", "candidates"):
        assert getattr(tasks, name) == getattr(LatentOptConfig(), name), name
    assert tasks.solver_members == LatentOptConfig().solver_members
    assert tasks.residual_norm == LatentOptConfig().residual_norm
    assert GenerateConfig().refine_steps == REFINE_CONFIG.steps
    assert GenerateConfig().teacher_steps == DiffusionConfig().steps
    assert BuildConfig(cache_dir="c", teacher_config="t").lambda_train == (
        DistillConfig().lambda_train
    )


def test_command_line_overrides_are_read_as_yaml_and_checked():
    overrides = parse_overrides(["optim.lr=1e-3", "train.steps=10", "net.attention=false"])
    assert overrides == {"optim.lr": "1e-3", "train.steps": 10, "net.attention": False}
    with pytest.raises(PiddmError, match=r"--set expects KEY=VALUE \(e.g. optim.lr=1e-3\)"):
        parse_overrides(["steps"])
    with pytest.raises(PiddmError, match="--set x: cannot parse value"):
        parse_overrides(["x=[1"])
    optim = replace_settings(OptimConfig(), {"lr": "1e-3", "batch_size": 8.0}, "optim")
    assert optim == dataclasses.replace(OptimConfig(), lr=1e-3, batch_size=8)
    assert isinstance(optim.batch_size, int)
    with pytest.raises(PiddmError, match="did you mean 'lr'"):
        replace_settings(OptimConfig(), {"lrr": 1}, "optim")
    with pytest.raises(PiddmError, match="config optim.lr: expected a positive number"):
        replace_settings(OptimConfig(), {"lr": -1}, "optim")


def test_diffusion_defaults_are_the_samplers_edm_grid() -> None:
    """One default each: ``DiffusionConfig``, ``karras_sigmas`` and the pair settings agree."""
    d = DiffusionConfig()
    assert (d.sigma_min, d.sigma_max, d.rho, d.steps) == (
        schedules.SIGMA_MIN,
        schedules.SIGMA_MAX,
        schedules.RHO,
        schedules.STEPS,
    )
    grid = karras_sigmas()
    assert len(grid) == d.steps + 1
    assert (float(grid[0]), float(grid[-2])) == pytest.approx((d.sigma_max, d.sigma_min))
    pairs = PairSettings(size=1, steps=1, refresh_every=0, refresh_fraction=0.0)
    assert (pairs.sigma_min, pairs.sigma_max, pairs.rho) == (d.sigma_min, d.sigma_max, d.rho)
