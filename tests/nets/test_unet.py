"""Tests of the U-Net: shapes, gradients, size checks, config round trip and presets."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from piddm.errors import PiddmError
from piddm.nets import UNetConfig, build_unet, count_parameters, unet_preset


def tiny_config(in_channels: int = 2, **overrides: object) -> UNetConfig:
    return unet_preset("tiny", in_channels, **overrides)


@pytest.mark.parametrize(
    ("channels", "size", "mult"),
    [(1, 16, (1, 2)), (2, 16, (1, 2, 2)), (3, 32, (1, 2)), (2, 64, (1, 2, 2, 2))],
)
def test_output_shape(channels: int, size: int, mult: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = build_unet(tiny_config(channels, channel_mult=mult))
    out = net(torch.randn(2, channels, size, size), torch.randn(2))
    assert out.shape == (2, channels, size, size)


def test_output_channels_and_scalar_noise() -> None:
    net = build_unet(tiny_config(3, out_channels=1, attention=False))
    out = net(torch.randn(2, 3, 16, 16), torch.tensor(0.3))
    assert out.shape == (2, 1, 16, 16)


def test_cpu_config_at_128() -> None:
    net = build_unet(unet_preset("cpu", 2))
    with torch.no_grad():
        out = net(torch.randn(1, 2, 128, 128), torch.zeros(1))
    assert out.shape == (1, 2, 128, 128)


def test_zero_init_output_and_gradients_flow() -> None:
    torch.manual_seed(0)
    net = build_unet(tiny_config(2, dropout=0.1))
    x, c = torch.randn(3, 2, 16, 16), torch.randn(3)
    assert torch.count_nonzero(net(x, c)) == 0  # the output conv starts at zero
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)
    net(x, c).square().mean().backward()
    for name, param in net.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_output_depends_on_noise_level() -> None:
    torch.manual_seed(0)
    net = build_unet(tiny_config(1))
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)
    x = torch.randn(1, 1, 16, 16)
    assert not torch.allclose(net(x, torch.tensor([-1.0])), net(x, torch.tensor([1.0])))


def test_float64() -> None:
    net = build_unet(tiny_config(1)).double()
    out = net(torch.randn(2, 1, 16, 16, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize("size", [10, 18, 30])
def test_bad_resolution_raises(size: int) -> None:
    net = build_unet(tiny_config(2, channel_mult=(1, 2, 2)))  # needs multiples of 4
    with pytest.raises(ValueError, match="not divisible by 4"):
        net(torch.randn(1, 2, size, size), torch.zeros(1))


def test_bad_inputs_raise() -> None:
    net = build_unet(tiny_config(2))
    with pytest.raises(ValueError, match="expects input of shape"):
        net(torch.randn(1, 3, 16, 16), torch.zeros(1))
    with pytest.raises(ValueError, match="c_noise"):
        net(torch.randn(2, 2, 16, 16), torch.zeros(3))


@pytest.mark.parametrize(
    "bad",
    [
        {"base_channels": 0},
        {"channel_mult": ()},
        {"channel_mult": (1, 0)},
        {"num_res_blocks": 0},
        {"dropout": 1.0},
    ],
)
def test_bad_config_raises(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError) as info:
        UNetConfig(in_channels=2, **bad)  # type: ignore[arg-type]
    assert isinstance(info.value, PiddmError)


def test_config_defaults_resolved() -> None:
    config = UNetConfig(in_channels=3, base_channels=16)
    assert config.out_channels == 3
    assert config.embedding_dim == 64


def test_config_json_round_trip() -> None:
    config = UNetConfig(in_channels=2, channel_mult=[1, 2, 3], dropout=0.1)  # type: ignore[arg-type]
    assert config.channel_mult == (1, 2, 3)
    data = json.loads(json.dumps(dataclasses.asdict(config)))
    assert isinstance(data["channel_mult"], list)
    assert UNetConfig(**data) == config
    assert UNetConfig.from_dict(data) == config


def test_num_groups_clamped() -> None:
    net = build_unet(UNetConfig(in_channels=1, base_channels=12, channel_mult=(1,), num_groups=8))
    groups = {m.num_groups for m in net.modules() if isinstance(m, torch.nn.GroupNorm)}
    assert groups <= {6, 8}  # 12 channels -> 6 groups, 24 -> 8
    assert net(torch.randn(1, 1, 16, 16), torch.zeros(1)).shape == (1, 1, 16, 16)


def test_preset_sizes() -> None:
    assert count_parameters(build_unet(unet_preset("tiny", 2))) < 100_000
    assert 0.8e6 < count_parameters(build_unet(unet_preset("cpu", 2))) < 2e6
    with pytest.raises(ValueError, match="unknown U-Net preset"):
        unet_preset("huge", 2)


def test_gpu_preset_constructs() -> None:
    assert count_parameters(build_unet(unet_preset("gpu", 2))) > 50e6


def test_refinement_blocks_start_as_the_identity_and_then_act() -> None:
    """A U-Net with refinement blocks loads the weights of one without and computes the same
    function (the grown student starts as its teacher); a trained block changes it."""
    torch.manual_seed(0)
    small = build_unet(tiny_config())
    torch.nn.init.normal_(small.conv_out.weight, std=0.1)  # a nonzero output to compare
    grown = build_unet(dataclasses.replace(tiny_config(), refine_blocks=2))
    missing, unexpected = grown.load_state_dict(small.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("refine.") for k in missing)
    assert count_parameters(grown) > count_parameters(small)
    x, sigma = torch.randn(3, 2, 16, 16), torch.tensor([0.1, 1.0, 10.0])
    reference = small(x, sigma)
    assert reference.abs().max() > 0
    torch.testing.assert_close(grown(x, sigma), reference, rtol=0, atol=0)
    for level in grown.refine:  # every decoder level's last block
        torch.nn.init.normal_(level[-1].conv2.weight, std=0.1)
        assert not torch.allclose(grown(x, sigma), reference)
        torch.nn.init.zeros_(level[-1].conv2.weight)


def test_refinement_blocks_must_be_a_non_negative_integer() -> None:
    for bad in (-1, 1.5, True):
        with pytest.raises(PiddmError, match="refine_blocks"):
            tiny_config(refine_blocks=bad)
    assert tiny_config(refine_blocks=0) == tiny_config()
