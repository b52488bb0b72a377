"""The models shipped in the package load offline and still do what their model cards say."""

from __future__ import annotations

import numpy as np
import pytest

from piddm.data.generate import sample_seed
from piddm.errors import PiddmError
from piddm.export import check_residual, check_start, denoising_mse, read_cards
from piddm.metrics import solver_consistency
from piddm.models import PRETRAINED_DIR, load_pretrained, pretrained_names, resolve_model
from piddm.pdes import get_pde
from piddm.sampling import pde_of, sample_checkpoint
from piddm.tasks.start import auto_start, load_start, shipped_starts

PDES = ("darcy", "poisson", "helmholtz", "burgers")  # the shipped ones (a new PDE ships none)
#: Start networks of the shipped students (Darcy's tasks; the Gaussian PDEs need none).
STARTS = ("darcy-32-start", "darcy-32-start-inverse")
EXPECTED = sorted([f"{pde}-32-{role}" for pde in PDES for role in ("teacher", "piddm")] + [*STARTS])
CARDS = {card.name: card for card in read_cards()}
#: Seed of the fresh solver data of this test: disjoint from training (0), test (1), demo.
FRESH_SEED = 4242
TOLERANCE = 1.5


def test_every_pde_ships_a_teacher_and_a_student_with_a_card() -> None:
    assert pretrained_names() == EXPECTED
    assert sorted(CARDS) == EXPECTED


def test_the_shipped_weights_fit_in_30_mb() -> None:
    total = sum(p.stat().st_size for p in PRETRAINED_DIR.glob("*.safetensors"))
    assert total < 30e6, f"{total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", STARTS)
def test_start_network_predicts_as_its_model_card_says(name: str) -> None:
    card = CARDS[name]
    model, metadata = load_pretrained(name)
    assert metadata["kind"] == "start" and card.source["student"] == "darcy-32-piddm"
    check = check_start(model, metadata, n=card.check["n"])
    assert sorted(check) == sorted(card.eval["tasks"]) == sorted(card.check["tasks"])
    for task, metrics in check.items():
        expected = card.check["tasks"][task]
        assert metrics["rel_l2_solution"] <= TOLERANCE * expected["rel_l2_solution"], task
        assert metrics["error_rate"] <= TOLERANCE * expected["error_rate"], task


def test_solve_picks_the_shipped_start_of_the_task_student_and_observed_fraction() -> None:
    darcy, poisson = get_pde("darcy", 32), get_pde("poisson", 32)
    # the start trained on the task alone first, then the one of every task
    assert shipped_starts(darcy, "inverse") == ["darcy-32-start-inverse", "darcy-32-start"]
    assert shipped_starts(darcy, "forward") == ["darcy-32-start"]
    assert shipped_starts(poisson, "forward") == []
    student = "darcy-32-piddm"
    assert auto_start(student, darcy, "inverse", 0.03) == "darcy-32-start-inverse"
    assert auto_start(str(resolve_model(student)), darcy, "inverse", 0.03) == (
        "darcy-32-start-inverse"
    )  # the same student by its file
    assert auto_start(student, darcy, "inverse", 0.08) == "darcy-32-start"  # above 2-5 %
    assert auto_start(student, darcy, "reconstruct", 0.03) == "darcy-32-start"
    assert auto_start(student, darcy, "forward", 0.3) is None  # above 1-10 %
    assert auto_start(student, darcy, "inverse", None) is None  # the user's own observations
    assert auto_start("darcy-32-teacher", darcy, "inverse", 0.03) is None  # another model
    load_start("darcy-32-start-inverse", darcy, task="inverse")
    with pytest.raises(PiddmError, match="trained on inverse problems, not forward"):
        load_start("darcy-32-start-inverse", darcy, task="forward")
    with pytest.raises(PiddmError, match="for PDE 'darcy', not 'poisson'"):
        load_start("darcy-32-start", poisson)


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.endswith("-piddm")])
def test_student_residual_stays_within_its_model_card(name: str) -> None:
    card = CARDS[name]
    model, metadata = load_pretrained(name)
    assert metadata["kind"] == "piddm" and pde_of(metadata).name == card.pde
    residual = check_residual(model, metadata, n=card.check["n"])
    assert residual <= TOLERANCE * card.check["residual_mean"], (residual, card.check)
    # Below its teacher's raw residual (a diagnostic: docs/concepts.md, "Physics measures")...
    teacher = CARDS[name.replace("-piddm", "-teacher")]
    assert residual < teacher.eval["residual_mean"] / 2
    # ... and as close to the solver for its own input as its card says.
    run = sample_checkpoint(model, metadata, 32, seed=7)
    consistency = float(np.median(solver_consistency(pde_of(metadata), run.fields)))
    assert consistency <= TOLERANCE * card.eval["solver_consistency_median"], consistency


@pytest.mark.parametrize("name", [n for n in EXPECTED if n.endswith("-teacher")])
def test_teacher_denoises_fresh_solver_data_as_its_model_card_says(name: str) -> None:
    card = CARDS[name]
    model, metadata = load_pretrained(name)
    pde = pde_of(metadata)
    fresh = np.stack([pde.generate(sample_seed(FRESH_SEED, i)) for i in range(32)])
    error = denoising_mse(model, pde, fresh, card.check["sigma"])
    assert error <= TOLERANCE * card.check["denoising_mse"], (error, card.check)


def test_pretrained_names_resolve_wherever_a_model_path_is_accepted() -> None:
    assert resolve_model("darcy-32-piddm") == PRETRAINED_DIR / "darcy-32-piddm.safetensors"
    with pytest.raises(PiddmError, match="no pretrained model named 'darcy-64-piddm'"):
        resolve_model("darcy-64-piddm")
    with pytest.raises(PiddmError, match="no pretrained model named"):
        load_pretrained("nonsense")
