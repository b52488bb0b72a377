"""The README's "train your own" commands chain: each uses the files of the ones above it.

Every bash block of README.md under the line ``<!-- ci: pipeline -->`` (as ``.ci/run`` finds
the test command under ``<!-- ci: test-command -->``) is run from top to bottom in a fresh
directory holding a copy of ``configs/``, through the CLI in-process. The test shrinks only
sizes (sample counts, steps, the U-Net's width, teacher pairs) by the substitutions of
:data:`REDUCED`: file names, PDEs, resolutions and configs are the README's, so a block whose
commands stop fitting together (held-out data at another resolution than the config, a run
directory that no command wrote) fails here as it would for a reader.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from piddm.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = "<!-- ci: pipeline -->"

#: Per command (its words after ``piddm``): values that replace the README's option values,
#: and arguments appended to it. Sizes only; the pipeline's files and settings stay.
TRAIN_SIZES = [
    "--steps", "2", "--no-progress",
    "--set", "data.n=24", "--set", "data.n_holdout=4",  # the config's training data, solved
    "--set", "net.base_channels=8", "--set", "net.attention=false",
    "--set", "optim.batch_size=4", "--set", "diffusion.steps=2", "--set", "train.num_samples=2",
]  # fmt: skip
REDUCED: dict[tuple[str, ...], tuple[dict[str, str], list[str]]] = {
    ("data", "generate"): ({"--n": "16"}, ["--quiet"]),
    ("train",): ({}, TRAIN_SIZES),
    ("distill",): (
        {},
        [
            "--steps",
            "2",
            "--no-progress",
            "--set",
            "distill.pairs=8",
            "--set",
            "distill.pair_steps=2",
            "--set",
            "distill.pair_batch_size=8",
            "--set",
            "optim.batch_size=4",
            "--set",
            "train.num_samples=2",
        ],
    ),  # fmt: skip
    ("amortise",): (
        {},
        [
            "--steps",
            "2",
            "--no-progress",
            "--set",
            "data.n_holdout=4",
            "--set",
            "optim.batch_size=4",
            "--set",
            "net.base_channels=8",
        ],
    ),  # fmt: skip
    ("sample",): ({"--n": "8"}, ["--quiet"]),
    ("eval",): ({}, []),
    ("solve", "forward"): ({"--n": "1"}, ["--steps", "2", "--ensemble", "2", "--candidates", "2"]),
    ("solve", "inverse"): ({"--n": "1"}, ["--steps", "2", "--ensemble", "2", "--candidates", "2"]),
}


def pipeline_blocks(text: str) -> list[list[list[str]]]:
    """The bash blocks under :data:`MARKER` in ``text``, each as its commands' argument lists
    (``\\`` continuations joined, ``#`` comments dropped)."""
    blocks = []
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        if lines[k + 1].strip() != "```bash":
            raise AssertionError(f"README.md line {k + 2}: {MARKER} must sit above a bash block")
        body = []
        for code in lines[k + 2 :]:
            if code.strip() == "```":
                break
            body.append(code)
        script = "\n".join(body).replace("\\\n", " ")
        blocks.append([shlex.split(cmd, comments=True) for cmd in script.splitlines()])
    return [[cmd for cmd in block if cmd] for block in blocks]


def reduced(argv: list[str]) -> list[str]:
    """``piddm ...`` of the README as the arguments of :func:`piddm.cli.main`, shrunk by
    :data:`REDUCED`; fails for a command the test does not know how to shrink."""
    assert argv[0] == "piddm", f"the README's pipeline runs only piddm commands, not {argv}"
    args = argv[1:]
    key = next((k for k in REDUCED if tuple(args[: len(k)]) == k), None)
    assert key is not None, f"no reduced sizes for `{shlex.join(argv)}`: add it to REDUCED"
    values, extra = REDUCED[key]
    out = list(args)
    for k, word in enumerate(out[:-1]):
        if word in values:
            out[k + 1] = values[word]
    return out + extra


def test_readme_has_the_two_pipelines() -> None:
    blocks = pipeline_blocks(README.read_text())
    assert len(blocks) == 2  # the 32^2 pipeline and the 16^2 smoke run
    words = [[cmd[1] for cmd in block] for block in blocks]
    assert words[0] == [
        "data", "train", "distill", "sample", "eval", "solve", "solve", "amortise", "solve"
    ]  # fmt: skip
    assert words[1] == ["data", "train", "sample", "eval"]


def test_reduction_keeps_files_and_resolutions() -> None:
    argv = shlex.split("piddm data generate darcy -s 32 --n 1024 --seed 1 --out t.h5")
    assert reduced(argv) == [*argv[1:7], "16", *argv[8:], "--quiet"]
    with pytest.raises(AssertionError, match="no reduced sizes"):
        reduced(["piddm", "bench", "--pde", "darcy"])


def run_pipeline(
    block: list[list[str]], where: Path, capsys: pytest.CaptureFixture[str]
) -> str | None:
    """Run ``block``'s commands (reduced) in ``where``, which gets a copy of ``configs/``;
    ``None`` if every command succeeded and wrote the files it names (``--out``,
    ``--run-dir``), else what went wrong first."""
    shutil.copytree(ROOT / "configs", where / "configs")
    for argv in block:
        with pytest.raises(SystemExit) as exit_info:
            main(reduced(argv))
        _, err = capsys.readouterr()
        if exit_info.value.code != 0:
            return f"`{shlex.join(argv)}` failed:\n{err}"
        for option, value in zip(argv, argv[1:], strict=False):
            if option in ("--out", "--run-dir") and not (where / value).exists():
                return f"`{shlex.join(argv)}` wrote no {value}"
    return None


@pytest.mark.parametrize("index", [0, 1], ids=["train-your-own-32", "smoke-16"])
def test_readme_pipeline_chains(
    index: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    block = pipeline_blocks(README.read_text())[index]
    monkeypatch.chdir(tmp_path)
    assert run_pipeline(block, tmp_path, capsys) is None


def test_a_pipeline_that_does_not_chain_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the smoke run with its held-out data at 32^2, as the README once had it
    block = pipeline_blocks(README.read_text())[1]
    generate = block[0]
    assert generate[:5] == ["piddm", "data", "generate", "darcy", "-s"]
    block = [[*generate[:5], "32", *generate[6:]], *block[1:]]
    monkeypatch.chdir(tmp_path)
    problem = run_pipeline(block, tmp_path, capsys)
    assert problem is not None and problem.startswith("`piddm eval")
    assert "at 16^2 but the reference is darcy at 32^2" in problem


def test_python_snippet_prints_what_its_comments_say(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    snippet = text.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert "# 7e-28: the solver's equations hold to float64 round-off" in snippet
    exec(compile(snippet, "README.md", "exec"), {})  # the README's code, as a reader runs it
    solver, generated = capsys.readouterr().out.split("tensor(")[1:]
    assert float(solver.strip("[]").split("]")[0]) < 1e-27
    values = [float(v) for v in generated.split("]")[0].strip("[").split(",")]
    assert len(values) == 8 and all(1e-3 < v < 10.0 for v in values)
