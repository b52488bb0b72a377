"""Fuzzing the CLI's error path with hypothesis.

Whatever the config file or the flag values, a command must either succeed (exit 0) or fail
as a user error: exit 2 with exactly one line ``error: ...`` on stderr, nothing on stdout and
no output file -- never exit 1 (an internal error) or a traceback. Commands run in-process
through :func:`piddm.cli.main`, the console entry point, so its exception-to-exit-code mapping
is what is tested; tiny real files and random-weight checkpoints keep a valid run in the tens
of milliseconds.

The default examples keep this file under about 30 s on one thread; the ``slow`` variants
run the same properties with many more examples (``pytest -m slow tests/test_fuzz_cli.py``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from conftest import make_dataset, tiny_config_dict
from piddm.checkpoint import save_weights
from piddm.cli import main
from piddm.config import config_from_dict
from piddm.pdes import PDE_REGISTRY, available_pdes, get_pde
from piddm.training.teacher import build_teacher, teacher_metadata

# ------------------------------------------------------------------ the property


def invoke(args: list[str]) -> tuple[int, str, str]:
    """Run ``piddm ARGS`` in-process; returns ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code
        else:  # pragma: no cover (main always exits)
            code = 0
    return (code if isinstance(code, int) else 0), out.getvalue(), err.getvalue()


def check_cli(args: list[str], outputs: tuple[Path, ...] = ()) -> tuple[int, str]:
    """Run ``piddm ARGS`` and assert the error contract; returns ``(exit code, stderr)``.

    ``outputs``: files / directories the command may create; they are removed first and
    must not exist after a failure.
    """
    for path in outputs:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    code, stdout, stderr = invoke(args)
    if currently_in_test_context():  # pytest --hypothesis-show-statistics: how many succeed
        event(f"exit {code}")
    shown = f"piddm {shlex.join(args)}\nstdout: {stdout!r}\nstderr: {stderr}"
    assert code in (0, 2), f"exit {code}: {shown}"
    assert "Traceback" not in stderr, shown
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        assert stdout == "", shown
        for path in outputs:
            assert not path.exists(), f"{path} left behind: {shown}"
    elif outputs:
        assert outputs[0].exists(), f"exit 0 without {outputs[0]}: {shown}"
    return code, stderr


# ------------------------------------------------------------------ real files


@dataclass
class Env:
    """Files the fuzzed commands read: a dataset, random-weight checkpoints, bad files."""

    root: Path
    data: Path
    teacher: Path
    student: Path
    config: dict[str, Any]
    bad_files: dict[str, Path]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("fuzz")
    data = make_dataset(root / "darcy16.h5", n=8)
    config = tiny_config_dict(data, root / "runs")
    cfg = config_from_dict(config)
    pde = get_pde("darcy", 16)
    torch.manual_seed(0)
    model = build_teacher(cfg, pde)
    teacher = save_weights(root / "teacher.safetensors", model, teacher_metadata(cfg, pde, 0))
    student_meta = {**teacher_metadata(cfg, pde, 0), "kind": "piddm"}
    student = save_weights(root / "student.safetensors", model, student_meta)
    bad = {
        "missing": root / "missing.h5",
        "directory": root,
        "empty": root / "empty.h5",
        "text": root / "text.h5",
        "foreign-hdf5": root / "foreign.h5",
        "checkpoint": teacher,
        "poisson": make_dataset(root / "poisson16.h5", name="poisson", n=4),
        "nan": root / "nan.h5",
        "reference": make_dataset(root / "reference16.h5", n=16),  # 2 x data: eval's floors
    }
    bad["empty"].write_bytes(b"")
    bad["text"].write_text("fields: 1\n")
    with h5py.File(bad["foreign-hdf5"], "w") as handle:
        handle.create_dataset("fields", data=np.zeros((2, 2, 16, 16)))
    shutil.copy(data, bad["nan"])
    with h5py.File(bad["nan"], "r+") as handle:
        handle["fields"][0, 0, 0, 0] = np.nan
    return Env(root, data, teacher, student, config, bad)


# ------------------------------------------------------------------ strategies

SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
#: Flag values that are not what the flag expects.
GARBAGE = st.one_of(
    st.sampled_from(
        ["", " ", "abc", "nan", "inf", "-inf", "1e999", "0x10", "1.5", "-0", "--", "-1", "None"]
    ),
    SAFE_TEXT,
)
#: Any YAML-representable value, nested a little.
ANY_VALUE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        SAFE_TEXT,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(SAFE_TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)
#: Numbers at and beyond the edges of the settings' ranges.
EDGE_NUMBERS = st.sampled_from(
    [0, -1, 1, 2, 3, 7, 8, 0.0, -0.5, 0.5, 0.999, 1.0, 1.5, 1e-300, 1e300, -1e300, 2**31, 2**64]
)


def mostly(valid: st.SearchStrategy, invalid: st.SearchStrategy, one_in: int = 6):
    """``valid`` most of the time, ``invalid`` about once in ``one_in`` draws, so that a run
    with several flags gets past the first check often enough to reach the later ones."""
    return st.integers(1, one_in).flatmap(lambda k: invalid if k == 1 else valid)


def int_flag(valid: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """A flag value: mostly a small valid integer, else non-positive, huge or garbage."""
    invalid = st.one_of(st.integers(-(2**70), 0).map(str), st.just(str(2**64)), GARBAGE)
    return mostly(valid.map(str), invalid)


def float_flag(valid: st.SearchStrategy[float]) -> st.SearchStrategy[str]:
    """A flag value: mostly a valid number, else any float (NaN, infinities) or garbage."""
    invalid = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), GARBAGE)
    return mostly(valid.map(repr), invalid)


def optional(value: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """An optional flag: absent (``None``) half of the time."""
    return st.one_of(st.none(), value)


def required(value: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    """A required flag: rarely absent."""
    return mostly(value, st.none(), one_in=12)


def options(**flags: st.SearchStrategy[str | None]) -> st.SearchStrategy[list[str]]:
    """argv fragments ``--flag value`` (``flag_name`` -> ``--flag-name``); ``None`` omits one."""

    def flatten(values: dict[str, str | None]) -> list[str]:
        argv: list[str] = []
        for flag, value in values.items():
            if value is not None:
                argv += [f"--{flag.replace('_', '-')}", value]
        return argv

    return st.fixed_dictionaries(flags).map(flatten)


def _nodes(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Key paths of every node below the root of nested dicts / lists."""
    children = (
        tree.items()
        if isinstance(tree, dict)
        else enumerate(tree)
        if isinstance(tree, list)
        else []
    )
    paths = []
    for key, child in children:
        paths.append((*prefix, key))
        paths += _nodes(child, (*prefix, key))
    return paths


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


def typo(key: str) -> st.SearchStrategy[str]:
    """Plausible misspellings of ``key`` and random names."""
    variants = {key + "s", key[:-1], key.upper(), key.replace("_", "-"), key[1:] + key[0]}
    return st.one_of(st.sampled_from(sorted(v for v in variants if v != key)), SAFE_TEXT)


@st.composite
def mutated_config(draw: Callable, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with 1-3 random mutations: a key removed or misspelt, a value of a wrong type,
    at a range's edge or plausible, a new key, a value nested in a mapping / list."""
    cfg = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _nodes(cfg)
        op = draw(st.sampled_from(["remove", "rename", "value", "edge", "insert", "nest", "tweak"]))
        if not paths:
            op = "insert"
        if op == "insert":
            mappings = [p for p in [(), *paths] if isinstance(_parent(cfg, (*p, None)), dict)]
            where = _parent(cfg, (*draw(st.sampled_from(mappings)), None))
            where[draw(SAFE_TEXT)] = draw(ANY_VALUE)
            continue
        path = draw(st.sampled_from(paths))
        parent, key = _parent(cfg, path), path[-1]
        if op == "remove":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(typo(str(key)))] = parent.pop(key)
        elif op == "value":
            parent[key] = draw(ANY_VALUE)
        elif op == "edge":
            parent[key] = draw(EDGE_NUMBERS)
        elif op == "tweak":  # a plausible value of the same type: reaches the cross-checks
            value = parent[key]
            if isinstance(value, bool):
                parent[key] = not value
            elif isinstance(value, int):
                parent[key] = draw(st.integers(1, 64))
            elif isinstance(value, float):
                parent[key] = draw(st.floats(1e-4, 0.999))
            elif isinstance(value, str):
                parent[key] = draw(st.sampled_from(["darcy", "poisson", "burgers", "x.h5", "b c"]))
        else:
            parent[key] = draw(st.sampled_from([{"value": parent[key]}, [parent[key]]]))
    return cfg


GARBAGE_YAML = st.one_of(
    st.sampled_from(
        [
            "",
            "- a\n- b\n",
            "just a string",
            "pde: [darcy",
            "pde: {name: darcy}\n  bad indent: 1\n",
            "[" * 3000,
            "a: &x [*x]",
            "? [a, b]\n: c\n",
            "pde: !!python/object:os.system {}\n",
            "\t tab: 1",
        ]
    ),
    SAFE_TEXT,
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
SLOW = settings(FUZZ, max_examples=1500, derandomize=False)


# ------------------------------------------------------------------ config files


def config_property(env: Env, raw: Any, extra: list[str]) -> None:
    path = env.root / "fuzz.yaml"
    if isinstance(raw, str):
        path.write_bytes(raw.encode("utf-8", "surrogatepass"))
    else:
        path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    check_cli(["train", "--config", str(path), "--dry-run", *extra])


def config_files(env_config: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.one_of(mutated_config(env_config), GARBAGE_YAML)


TRAIN_FLAGS = st.one_of(
    st.just([]),
    st.just(["--json"]),
    options(steps=int_flag(st.integers(1, 5))),
    options(data=st.sampled_from(["missing.h5", "poisson16.h5", "nan.h5", "darcy16.h5"])),
    st.lists(
        st.builds(
            lambda key, value: ["--set", f"{key}={value}"],
            st.sampled_from(["optim.lr", "train.seed", "net.num_groups", "pde.params.k", "x..y"]),
            GARBAGE,
        ),
        max_size=2,
    ).map(lambda parts: [a for part in parts for a in part]),
)


def test_the_unmutated_config_passes_the_dry_run(env: Env) -> None:
    path = env.root / "base.yaml"
    path.write_text(yaml.safe_dump(env.config))
    assert check_cli(["train", "--config", str(path), "--dry-run"])[0] == 0


def _config_test(profile: settings) -> Callable:
    # The strategy needs the module's config, known only once the fixture ran: draw it from
    # `st.data()` inside the test.
    @profile
    @given(data=st.data())
    def test(env: Env, data: st.DataObject) -> None:
        raw = data.draw(config_files(env.config), label="config")
        extra = data.draw(TRAIN_FLAGS, label="flags")
        config_property(env, raw, extra)

    return test


test_fuzz_train_config_files = _config_test(FUZZ)
test_fuzz_train_config_files_many = pytest.mark.slow(_config_test(SLOW))


# ------------------------------------------------------------------ command flags

PDE_NAMES = st.one_of(st.sampled_from(available_pdes()), GARBAGE)
#: Every registered PDE's parameter names, and two that no PDE has.
PARAM_NAMES = sorted({key for cls in PDE_REGISTRY.values() for key in cls.default_params})
PARAMS = st.lists(
    st.one_of(
        st.builds(
            "{}={}".format,
            st.sampled_from([*PARAM_NAMES, "bogus", ""]),
            st.one_of(EDGE_NUMBERS.map(repr), float_flag(st.floats(0.1, 20))),
        ),
        GARBAGE,
    ),
    max_size=2,
)


def _data_generate_test(profile: settings) -> Callable:
    @profile
    @given(
        pde=mostly(st.sampled_from(available_pdes()), GARBAGE),
        flags=options(
            resolution=required(int_flag(st.integers(8, 20))),
            n=required(int_flag(st.integers(1, 3))),
            seed=optional(int_flag(st.integers(0, 2**70))),
            workers=optional(int_flag(st.just(1))),
            shard=mostly(
                st.none(),
                st.one_of(st.sampled_from(["0/1", "1/2", "2/2", "0/0", "a/b", "1/"]), GARBAGE),
                one_in=4,
            ),
        ),
        params=mostly(st.just([]), PARAMS, one_in=3),
    )
    def test(env: Env, pde: str, flags: list[str], params: list[str]) -> None:
        out = env.root / "gen.h5"
        param_args = [a for p in params for a in ("--param", p)]
        check_cli(
            ["data", "generate", pde, *flags, *param_args, "--out", str(out), "--quiet"], (out,)
        )

    return test


test_fuzz_data_generate = _data_generate_test(FUZZ)
test_fuzz_data_generate_many = pytest.mark.slow(_data_generate_test(SLOW))


def _sample_test(profile: settings) -> Callable:
    @profile
    @given(
        model=mostly(
            st.sampled_from(["teacher", "student"]),
            st.sampled_from(["missing", "darcy-16-nothing", "data", "text"]),
        ),
        flags=options(
            n=required(int_flag(st.integers(1, 3))),
            steps=optional(int_flag(st.integers(1, 3))),
            refine=optional(int_flag(st.integers(0, 2))),
            batch_size=optional(int_flag(st.integers(1, 4))),
            seed=optional(int_flag(st.integers(0, 2**70))),
            pde=optional(mostly(st.just("darcy"), PDE_NAMES)),
            resolution=optional(int_flag(st.just(16))),
        ),
    )
    def test(env: Env, model: str, flags: list[str]) -> None:
        paths = {"teacher": env.teacher, "student": env.student, "data": env.data}
        paths.update(env.bad_files)
        out = env.root / "samples.h5"
        argv = ["sample", "--model", str(paths.get(model, model)), *flags, "--out", str(out)]
        check_cli([*argv, "--quiet", "--device", "cpu"], (out,))

    return test


test_fuzz_sample = _sample_test(FUZZ)
test_fuzz_sample_many = pytest.mark.slow(_sample_test(SLOW))


def _solve_test(profile: settings) -> Callable:
    @profile
    @given(
        task=mostly(st.sampled_from(["forward", "inverse", "reconstruct"]), GARBAGE),
        model=mostly(st.just("student"), st.sampled_from(["teacher", "missing", "data"])),
        data=mostly(st.just("data"), st.sampled_from(["poisson", "nan", "missing", None])),
        flags=options(
            obs_fraction=required(float_flag(st.floats(0.01, 1.0))),
            ensemble=optional(int_flag(st.integers(1, 3))),
            # Always given: the default screens 256 draws, too slow for hundreds of examples.
            candidates=required(int_flag(st.integers(0, 8))),
            steps=required(int_flag(st.integers(0, 3))),
            lr=optional(float_flag(st.floats(1e-4, 1.0))),
            lambda_infer=optional(float_flag(st.floats(0.0, 10.0))),
            n=required(int_flag(st.integers(1, 2))),
            seed=optional(int_flag(st.integers(0, 2**70))),
        ),
    )
    def test(env: Env, task: str, model: str, data: str | None, flags: list[str]) -> None:
        paths = {"student": env.student, "teacher": env.teacher, "data": env.data}
        paths.update(env.bad_files)
        out, figures = env.root / "solve.h5", env.root / "solve-figures"
        argv = ["solve", task, "--model", str(paths.get(model, model)), *flags]
        if data is not None:
            argv += ["--data", str(paths[data])]
        argv += ["--out", str(out), "--figures", str(figures), "--device", "cpu"]
        check_cli(argv, (out, figures))

    return test


test_fuzz_solve = _solve_test(FUZZ)
test_fuzz_solve_many = pytest.mark.slow(_solve_test(SLOW))


def _eval_test(profile: settings) -> Callable:
    bad = ["missing", "directory", "empty", "text", "foreign-hdf5", "checkpoint", "poisson", "nan"]
    invalid = st.one_of(st.sampled_from(bad), GARBAGE)

    @profile
    @given(
        samples=mostly(st.just("data"), invalid, one_in=4),
        reference=mostly(st.just("reference"), st.one_of(st.just("data"), invalid), one_in=4),
        consistency=st.booleans(),
        as_json=st.booleans(),
    )
    def test(env: Env, samples: str, reference: str, consistency: bool, as_json: bool) -> None:
        paths = {"data": env.data, **env.bad_files}
        argv = ["eval", "--samples", str(paths.get(samples, samples))]
        argv += ["--reference", str(paths.get(reference, reference))]
        argv += [] if consistency else ["--no-consistency"]
        check_cli(argv + (["--json"] if as_json else []))

    return test


test_fuzz_eval = _eval_test(FUZZ)
test_fuzz_eval_many = pytest.mark.slow(_eval_test(SLOW))


# ------------------------------------------------------------------ what the fuzzing found


def _config(env: Env, text: str) -> str:
    path = env.root / "regression.yaml"
    path.write_text(text)
    return str(path)


def _tiny(env: Env, **section: dict) -> str:
    raw = copy.deepcopy(env.config)
    for key, value in section.items():
        raw[key] = {**raw.get(key, {}), **value}
    return _config(env, yaml.safe_dump(raw))


def _solve(env: Env) -> list[str]:
    """A quick, valid ``piddm solve`` command line (one instance, two latents, two steps)."""
    argv = ["solve", "forward", "--model", str(env.student), "--data", str(env.data)]
    quick = ["--ensemble", "2", "--candidates", "4", "--steps", "2"]
    return [*argv, "--obs-fraction", "0.5", "--n", "1", *quick]


#: ``(argv builder, message)``: inputs that crashed (exit 1) or wrote NaN outputs before
#: the fuzzing found them, and now fail with one line and exit 2.
REGRESSIONS: list[tuple[Callable[[Env], list[str]], str]] = [
    # config files (piddm train --dry-run)
    (lambda e: ["--config", _config(e, "[" * 3000)], "nested too deeply"),
    (lambda e: ["--config", _tiny(e, diffusion={"P_mean": float("nan")})], "a finite number"),
    (lambda e: ["--config", _tiny(e, net={"channel_mult": [2**64, 2]})], "limit is 2**63"),
    (lambda e: ["--config", _tiny(e, net={"channel_mult": [2**62, 2]})], "cannot build"),
    (
        lambda e: ["--config", _tiny(e, pde={"resolution": 2**40}, data={"path": "no.h5", "n": 2})],
        "resolution must be at most 4096",
    ),
    (lambda e: ["--config", _tiny(e, pde={"params": {"a_low": -1}})], "must be > 0"),
    (lambda e: ["--config", _tiny(e), "--set", "net.channel_mult=" + "[" * 3000], "--set"),
    # flags
    (lambda e: ["data", "generate", "darcy", "-s", "8", "--n", "1", "--seed", "-1"], "a seed"),
    (lambda e: ["data", "generate", "darcy", "-s", str(2**64), "--n", "1"], "64-bit integer"),
    (lambda e: ["data", "generate", "burgers", "-s", "8", "--n", "1", "--param", "nu=nan"], "nu"),
    (
        lambda e: ["data", "generate", "darcy", "-s", "8", "--n", "1", "--param", "forcing=1e308"],
        "produced NaN/Inf",
    ),
    (lambda e: ["sample", "--model", str(e.teacher), "--n", "1", "--seed", str(2**70)], "seed"),
    (lambda e: ["sample", "--model", str(e.teacher), "--n", str(10**12)], "out of memory"),
    (lambda e: [*_solve(e), "--candidates", str(10**12)], "out of memory (tried to allocate"),
    (lambda e: [*_solve(e), "--seed", "-5"], "a seed"),
    (lambda e: [*_solve(e), "--lr", "1.1e54"], "lr must be positive and at most 3.4e38"),
    # exit 0 with NaN estimates before: now refused, nothing written
    (lambda e: [*_solve(e), "--lambda-infer", "1e300"], "the latent optimisation diverged"),
]


@pytest.mark.parametrize(("make_argv", "message"), REGRESSIONS)
def test_inputs_that_crashed_now_fail_with_one_line(
    env: Env, make_argv: Callable[[Env], list[str]], message: str
) -> None:
    argv = make_argv(env)
    out = env.root / "regression.h5"
    if argv[0] == "--config":
        argv = ["train", *argv, "--dry-run"]
    else:  # no progress bar on stderr next to the error line
        argv = [*argv, "--out", str(out), *(["--quiet"] if argv[0] in ("data", "sample") else [])]
    code, stderr = check_cli(argv, (out,))
    assert code == 2 and message in stderr, stderr
