"""The models shipped in the package load offline and still do what their model cards say."""

from __future__ import annotations

import numpy as np
import pytest

from piddm.data.generate import sample_seed
from piddm.errors import PiddmError
from piddm.export import check_residual, denoising_mse, read_cards
from piddm.metrics import solver_consistency
from piddm.models import PRETRAINED_DIR, load_pretrained, pretrained_names, resolve_model
from piddm.sampling import pde_of, sample_checkpoint

PDES = ("darcy", "poisson", "helmholtz", "burgers")  # the shipped ones (a new PDE ships none)
EXPECTED = sorted(f"{pde}-32-{role}" for pde in PDES for role in ("teacher", "piddm"))
CARDS = {card.name: card for card in read_cards()}
#: Seed of the fresh solver data of this test: disjoint from training (0), test (1), demo.
FRESH_SEED = 4242
TOLERANCE = 1.5


def test_every_pde_ships_a_teacher_and_a_student_with_a_card() -> None:
    assert pretrained_names() == EXPECTED
    assert sorted(CARDS) == EXPECTED


def test_the_shipped_weights_fit_in_20_mb() -> None:
    total = sum(p.stat().st_size for p in PRETRAINED_DIR.glob("*.safetensors"))
    assert total < 20e6, f"{total / 1e6:.1f} MB"


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
