"""The shared option factories of :mod:`piddm.commands.options` and the run helpers of
:mod:`piddm.commands.runs`: one declaration per flag, the same parameters in every command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from piddm.commands import distill, train
from piddm.commands.options import (
    config_option,
    device_flag,
    out_option,
    overwrite_option,
    path_option,
    run_dir_options,
    settings_from_params,
    stack,
)
from piddm.commands.runs import report_run, run_options, run_overrides
from piddm.training.loop import TrainResult
from piddm.training.session import RunOptions


@dataclasses.dataclass(frozen=True)
class Settings:
    steps: int = 3
    lr: float = 0.5
    hidden: str = "kept"


def test_stack_keeps_the_written_order_of_its_options():
    @click.command()
    @stack(out_option(), overwrite_option(), device_flag())
    @click.option("--last", is_flag=True)
    def command(out: str, overwrite: bool, device: str, last: bool) -> None:
        """A command."""

    assert [p.name for p in command.params] == ["out", "overwrite", "device", "last"]


def test_path_options_pass_strings_or_paths_and_refuse_the_other_kind(tmp_path: Path):
    seen: dict[str, object] = {}

    @click.command()
    @path_option("--file")
    @path_option("--folder", kind="dir", as_path=True)
    @config_option("A config.", required=False)
    def command(file: str | None, folder: Path | None, config_path: Path | None) -> None:
        seen.update(file=file, folder=folder, config_path=config_path)

    runner = CliRunner()
    result = runner.invoke(command, ["--file", "a.h5", "--folder", "out", "--config", "c.yaml"])
    assert result.exit_code == 0, result.output
    assert seen == {"file": "a.h5", "folder": Path("out"), "config_path": Path("c.yaml")}
    assert runner.invoke(command, ["--file", str(tmp_path)]).exit_code == 2  # a directory
    assert runner.invoke(command, []).exit_code == 0 and seen["file"] is None


def test_device_flag_without_default_leaves_the_choice_to_the_config():
    @click.command()
    @device_flag(None, "Where to run [config's device].")
    def command(device: str | None) -> None:
        click.echo(repr(device))

    assert CliRunner().invoke(command, []).output.strip() == "None"
    assert CliRunner().invoke(command, ["--device", "gpu"]).exit_code == 2


def test_settings_from_params_reads_the_options_named_like_fields():
    @click.command()
    @click.option("--steps", type=int, default=Settings.steps)
    @click.option("--lr", type=float, default=Settings.lr)
    @click.option("--other", default="x")
    def command(steps: int, lr: float, other: str) -> None:
        click.echo(repr(settings_from_params(Settings, lr=0.25)))

    output = CliRunner().invoke(command, ["--steps", "7", "--lr", "2"]).output.strip()
    assert output == repr(Settings(steps=7, lr=0.25))  # the override wins; hidden: default


def test_train_and_distill_declare_the_run_options_alike():
    run = [p for p in train.command.params if p.name in ("run_dir", "steps", "overwrite")]
    same = [p for p in distill.command.params if p.name in ("run_dir", "steps", "overwrite")]
    for a, b in zip(run, same, strict=True):
        assert (a.name, type(a.type), a.default) == (b.name, type(b.type), b.default)
    names = {f.name for f in dataclasses.fields(RunOptions)}
    for command in (train.command, distill.command):
        assert names <= {p.name for p in command.params}


def test_run_options_are_the_run_flags_of_the_running_command(tmp_path: Path):
    @click.command()
    @run_dir_options(None, "Steps.", "Resume.")
    @device_flag()
    @click.option("--progress/--no-progress", default=True)
    def command(**params: object) -> None:
        click.echo(json.dumps(run_options(), default=str))

    argv = ["--run-dir", str(tmp_path), "--resume", "--device", "cpu", "--no-progress"]
    options = json.loads(CliRunner().invoke(command, argv).output)
    assert RunOptions(**options) == RunOptions(str(tmp_path), True, False, "cpu", False)


def test_run_overrides_let_a_given_flag_win_over_set():
    extra = run_overrides(("train.steps=5", "optim.lr=0.001"), {"train.steps": 9, "x.y": None})
    assert extra == {"train.steps": 9, "optim.lr": 0.001}


@pytest.mark.parametrize(
    ("verb", "with_loss", "line"),
    [
        ("trained", True, "trained 4 steps in 1.5 s (loss 0.25, sample residual 0.125); "),
        ("distilled", False, "distilled 4 steps in 1.5 s, sample residual 0.125; "),
    ],
)
def test_report_run_prints_one_line_or_json(verb, with_loss, line, capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    result = TrainResult(
        run_dir=Path("run"),
        checkpoint=Path("w.safetensors"),
        steps=4,
        seconds=1.5,
        loss=0.25,
        parameters=10,
        extra={"sample_residual_mean": 0.125},
    )
    report_run(result, False, verb, with_loss)
    assert capsys.readouterr().out == f"{line}weights: w.safetensors\n"
    report_run(result, True, verb, with_loss)
    assert json.loads(capsys.readouterr().out)["sample_residual_mean"] == 0.125
    monkeypatch.setenv("RANK", "1")  # under torchrun only rank 0 reports
    report_run(result, False, verb, with_loss)
    assert capsys.readouterr().out == ""
