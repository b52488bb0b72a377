"""``piddm data import`` / ``export`` on files written in DiffusionPDE's and FunDPS's layouts.

No real DiffusionPDE file is needed: piddm's own solver data at 16^2 is written the way the
originals are (``scipy.io.savemat`` for the MATLAB 5 files, ``h5py`` for a MATLAB 7.3 file,
``numpy.save`` for the training copies), with the encodings written out here from the
formulas in DiffusionPDE's and FunDPS's code (docs/diffusionpde.md), and imported back.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from conftest import make_dataset
from helpers import cli_user_error
from piddm.cli import main
from piddm.data.io import read_attrs, read_dataset

S, N = 16, 4
KEYS = {
    "darcy": ("thresh_a_data", "thresh_p_data"),
    "poisson": ("f_data", "phi_data"),
    "helmholtz": ("f_data", "psi_data"),
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    assert err == "" or int(info.value.code) != 0, err
    return int(info.value.code), out


@pytest.fixture(scope="module")
def solver_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """``pde -> (N, 2, S, S)`` float64 solver fields (what a piddm dataset stores, widened)."""
    root = tmp_path_factory.mktemp("solver")
    out = {}
    for name in KEYS:
        path = make_dataset(root / f"{name}.h5", name=name, resolution=S, n=N)
        out[name] = read_dataset(path).fields.astype(np.float64)
    return out


def imported(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(fields, seeds, attrs)`` of an imported dataset."""
    data = read_dataset(path)
    with h5py.File(path, "r") as handle:
        attrs = read_attrs(handle)
    return data.fields, data.seeds, attrs


# ----------------------------------------------------------------------------- MATLAB files
@pytest.mark.parametrize("name", list(KEYS))
def test_matlab5_files_import_exactly_with_their_source_recorded(
    name: str, solver_data: dict[str, np.ndarray], tmp_path: Path, capsys
) -> None:
    fields = solver_data[name]
    source = tmp_path / f"{name}.mat"
    key_a, key_u = KEYS[name]
    scipy.io.savemat(source, {key_a: fields[:, 0], key_u: fields[:, 1]})  # (N, X, Y) float64
    out = tmp_path / "out.h5"
    code, stdout = run(capsys, "data", "import", str(source), "--out", str(out), "--json")
    assert code == 0
    report = json.loads(stdout)
    got, seeds, attrs = imported(out)
    assert got.tobytes() == fields.astype(np.float32).tobytes()  # same orientation, same bits
    assert seeds.tolist() == list(range(N))
    assert attrs["pde"] == name and attrs["source_layout"] == "diffusionpde-mat"
    assert attrs["source_keys"] == [key_a, key_u]
    assert attrs["source_file"] == str(source.resolve())
    assert attrs["generator"]["import"] == "diffusionpde-mat"
    assert report["n"] == N and report["pde"] == name and report["keys"] == [key_a, key_u]
    # piddm's own solver data under piddm's discretisation (float32 storage round-off only)
    assert report["relative_residual_mean"] < 1e-5
    assert report["solver_consistency"] < 1e-5 and report["consistency_samples"] == N


def test_matlab73_file_is_read_column_major(solver_data, tmp_path: Path, capsys) -> None:
    """A MATLAB 7.3 file is HDF5 after a 512-byte header, each variable stored column-major:
    h5py sees (Y, X, N). The import must give back (N, X, Y), not a transposed field."""
    fields = solver_data["darcy"]
    source = tmp_path / "darcy.mat"
    with h5py.File(source, "w", userblock_size=512) as handle:
        for key, channel in zip(KEYS["darcy"], (0, 1), strict=True):
            dataset = handle.create_dataset(key, data=np.ascontiguousarray(fields[:, channel].T))
            dataset.attrs["MATLAB_class"] = np.bytes_(b"double")
    with open(source, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")
    out = tmp_path / "out.h5"
    assert run(capsys, "data", "import", str(source), "--out", str(out), "--n", "3")[0] == 0
    got, _, attrs = imported(out)
    assert got.tobytes() == fields[:3].astype(np.float32).tobytes()
    assert attrs["source_container"] == "MATLAB 7.3 (HDF5)"


def test_printed_report_names_the_source_and_the_three_measures(
    solver_data, tmp_path: Path, capsys
) -> None:
    source = tmp_path / "poisson.mat"
    fields = solver_data["poisson"]
    scipy.io.savemat(source, {"f_data": fields[:, 0], "phi_data": fields[:, 1]})
    code, stdout = run(capsys, "data", "import", str(source), "--out", str(tmp_path / "p.h5"))
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f"imported {N} poisson samples at {S}^2 from {source}")
    assert "diffusionpde-mat" in lines[0] and "f_data, phi_data" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["mean", "relative", "solver"]


# ----------------------------------------------------------------------------- encoded copies
def diffusionpde_encode(name: str, a: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """DiffusionPDE's training scaling: merge_data.py (Darcy); the inverses of the decodings
    of scripts/generate_poisson.py (a * 2.15, u / 36.5) and generate_helmholtz.py (a * 2.15,
    u * 0.028)."""
    if name == "darcy":
        return a * 0.2 - 1.5, u * 115 - 0.9
    if name == "poisson":
        return a / 2.15, u * 36.5
    return a / 2.15, u / 0.028


def diffusionpde_decode(name: str, a: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """The decodings as DiffusionPDE's sampling scripts write them."""
    if name == "darcy":
        return (a + 1.5) / 0.2, (u + 0.9) / 115
    if name == "poisson":
        return a * 2.15, u / 36.5
    return a * 2.15, u * 0.028


@pytest.mark.parametrize("name", list(KEYS))
def test_diffusionpde_training_copy_decodes_as_their_scripts(
    name: str, solver_data, tmp_path: Path, capsys
) -> None:
    fields = solver_data[name]
    folder = tmp_path / "merged"
    folder.mkdir()
    order = [0, 1, 2, 10, 11]  # numeric, not lexicographic (merge_10 after merge_2)
    samples = np.concatenate([fields, fields[:1]])  # 5 samples
    for index, sample in zip(order, samples, strict=True):
        a, u = diffusionpde_encode(name, sample[0], sample[1])
        np.save(folder / f"merge_{index}.npy", np.stack((a, u), axis=-1))  # (H, W, 2)
    out = tmp_path / "out.h5"
    args = ["data", "import", str(folder), "--pde", name, "--out", str(out)]
    assert run(capsys, *args)[0] == 0
    got, seeds, attrs = imported(out)
    assert seeds.tolist() == order
    assert attrs["source_layout"] == "diffusionpde-npy"
    encoded = [diffusionpde_encode(name, s[0], s[1]) for s in samples]
    expected_u = np.stack([diffusionpde_decode(name, a, u)[1] for a, u in encoded])
    assert np.array_equal(got[:, 1], expected_u.astype(np.float32))
    if name == "darcy":  # decoded, then DiffusionPDE's threshold: exactly 3 / 12 again
        assert np.array_equal(got[:, 0], samples[:, 0].astype(np.float32))
    else:
        expected_a = np.stack([diffusionpde_decode(name, a, u)[0] for a, u in encoded])
        assert np.array_equal(got[:, 0], expected_a.astype(np.float32))
    np.testing.assert_allclose(got, samples, rtol=1e-5, atol=1e-6 * np.abs(samples).max())


#: FunDPS's STATS (utils/dataset_prop.py): ``pde -> (means, stds)``.
FUNDPS_STATS = {
    "darcy": ((7.5, 5.69201936e-03), (4.5, 3.79030361e-03)),
    "poisson": ((0, 9.67226952e-06), (0.2919494, 0.00417478)),
    "helmholtz": ((0, 1.05050595e-05), (0.2844538, 0.00428004)),
}


@pytest.mark.parametrize("name", list(KEYS))
def test_fundps_normalised_copy_decodes_as_their_normaliser(
    name: str, solver_data, tmp_path: Path, capsys
) -> None:
    fields = solver_data[name]
    means, stds = FUNDPS_STATS[name]
    normalised = np.stack(
        [(fields[:, c] - means[c]) * (0.5 / stds[c]) for c in (0, 1)], axis=1
    ).astype(np.float32)  # stored as float32 like DDIS's export; FunDPS keeps float64
    source = tmp_path / "test.npy"
    np.save(source, normalised)
    out = tmp_path / "out.h5"
    assert run(capsys, "data", "import", str(source), "--pde", name, "--out", str(out))[0] == 0
    got, _, attrs = imported(out)
    assert attrs["source_layout"] == "fundps-npy"
    decoded = np.stack(
        [normalised[:, c].astype(np.float64) / (0.5 / stds[c]) + means[c] for c in (0, 1)], 1
    )
    if name == "darcy":
        decoded[:, 0] = np.where(decoded[:, 0] > 7.5, 12.0, 3.0)
    assert np.array_equal(got, decoded.astype(np.float32))
    np.testing.assert_allclose(got, fields, rtol=1e-5, atol=1e-6 * np.abs(fields).max())


# ----------------------------------------------------------------------------- export
def test_piddm_darcy_set_exported_and_imported_back_is_bit_identical(
    tmp_path: Path, capsys
) -> None:
    original = make_dataset(tmp_path / "darcy.h5", name="darcy", resolution=S, n=5)
    mat = tmp_path / "darcy.mat"
    code, stdout = run(capsys, "data", "export", str(original), "--out", str(mat), "--json")
    assert code == 0 and json.loads(stdout)["keys"] == list(KEYS["darcy"])
    stored = scipy.io.loadmat(mat)
    assert stored["thresh_a_data"].shape == (5, S, S)
    assert stored["thresh_a_data"].dtype == np.float64
    back = tmp_path / "back.h5"
    assert run(capsys, "data", "import", str(mat), "--out", str(back))[0] == 0
    before, after = read_dataset(original), read_dataset(back)
    assert after.fields.dtype == np.float32
    assert after.fields.tobytes() == before.fields.tobytes()
    assert after.pde.describe() == before.pde.describe()


BAD_EXPORTS = [
    ("burgers", None, "darcy, poisson, helmholtz only"),
    ("darcy", "perturb", "values other than 3 and 12"),
    ("darcy", "txt", "--out must be a .mat file"),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD_EXPORTS)
def test_bad_exports_are_one_line_errors(
    name: str, change: str | None, message: str, tmp_path: Path, capsys
) -> None:
    dataset = make_dataset(tmp_path / "d.h5", name=name, resolution=S, n=2)
    if change == "perturb":
        with h5py.File(dataset, "r+") as handle:
            handle["fields"][0, 0, 3, 3] = 7.0
    out = tmp_path / ("x.txt" if change == "txt" else "x.mat")
    line = cli_user_error(capsys, "data", "export", str(dataset), "--out", str(out))
    assert message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


# ----------------------------------------------------------------------------- bad input
def _mat(path: Path, **arrays: np.ndarray) -> Path:
    scipy.io.savemat(path, arrays)
    return path


def _bad_source(kind: str, root: Path, fields: np.ndarray) -> tuple[Path, list[str]]:
    """A source in no known layout or with a flaw, and the extra import flags."""
    a, u = fields[:, 0], fields[:, 1]
    if kind == "text":
        path = root / "notes.mat"
        path.write_text("not a MATLAB file\n")
        return path, []
    if kind == "empty-dir":
        (root / "empty").mkdir()
        return root / "empty", []
    if kind == "hf-dir":
        (root / "hf").mkdir()
        (root / "hf" / "dataset_info.json").write_text("{}")
        return root / "hf", ["--pde", "darcy"]
    if kind == "wrong-keys":
        return _mat(root / "k.mat", coef=a, sol=u), []
    if kind == "burgers":
        return _mat(root / "b.mat", input=a[:, 0], output=a), []
    if kind == "not-square":
        return _mat(root / "s.mat", thresh_a_data=a[:, :, :-1], thresh_p_data=u[:, :, :-1]), []
    if kind == "mismatch":
        return _mat(root / "m.mat", thresh_a_data=a[:2], thresh_p_data=u), []
    if kind == "two-dim":
        return _mat(root / "t.mat", thresh_a_data=a[0], thresh_p_data=u[0]), []
    if kind == "nan":
        bad = u.copy()
        bad[1, 5, 5] = np.nan
        return _mat(root / "n.mat", thresh_a_data=a, thresh_p_data=bad), []
    if kind == "inf-npy":
        data = np.stack([a * 0.2 - 1.5, u * 115 - 0.9], axis=-1)
        data[0, 0, 0, 1] = np.inf
        np.save(root / "i.npy", data)
        return root / "i.npy", ["--pde", "darcy"]
    if kind == "not-binary":
        return _mat(root / "nb.mat", thresh_a_data=a + 0.5, thresh_p_data=u), []
    if kind == "npy-no-pde":
        np.save(root / "x.npy", fields)
        return root / "x.npy", []
    if kind == "npy-shape":
        np.save(root / "y.npy", np.zeros((2, 3, S, S)))
        return root / "y.npy", ["--pde", "darcy"]
    if kind == "wrong-pde":
        return _mat(root / "w.mat", thresh_a_data=a, thresh_p_data=u), ["--pde", "poisson"]
    if kind == "wrong-layout":
        path = _mat(root / "l.mat", thresh_a_data=a, thresh_p_data=u)
        return path, ["--layout", "fundps-npy", "--pde", "darcy"]
    if kind == "piddm":
        return make_dataset(root / "p.h5", n=2), []
    if kind == "tiny":
        return _mat(root / "r.mat", thresh_a_data=a[:, :4, :4], thresh_p_data=u[:, :4, :4]), []
    if kind == "zero-n":
        return _mat(root / "z.mat", thresh_a_data=a, thresh_p_data=u), ["--n", "0"]
    assert kind == "missing"
    return root / "nothing.mat", []


BAD_SOURCES = [
    ("text", "no known layout"),
    ("empty-dir", "no known layout"),
    ("hf-dir", "Hugging Face"),
    ("wrong-keys", "no DiffusionPDE key pair (keys: coef, sol)"),
    ("burgers", "Burgers"),
    ("not-square", "expected (N, S, S)"),
    ("mismatch", "must both be (N, S, S)"),
    ("two-dim", "expected (N, S, S)"),
    ("nan", "NaN, Inf"),
    ("inf-npy", "NaN, Inf"),
    ("not-binary", "values other than 3 and 12"),
    ("npy-no-pde", "pass --pde"),
    ("npy-shape", "no known layout"),
    ("wrong-pde", "has no key f_data, phi_data"),
    ("wrong-layout", "not a .npy"),
    ("piddm", "already a piddm dataset"),
    ("tiny", "resolution"),
    ("zero-n", "--n must be positive"),
    ("missing", "does not exist"),
]


@pytest.mark.parametrize(("kind", "message"), BAD_SOURCES)
def test_bad_sources_are_one_line_errors_without_output(
    kind: str, message: str, solver_data, tmp_path: Path, capsys
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    source, flags = _bad_source(kind, inputs, solver_data["darcy"])
    outputs = tmp_path / "out"
    outputs.mkdir()
    out = outputs / "x.h5"
    line = cli_user_error(capsys, "data", "import", str(source), "--out", str(out), *flags)
    assert message in line, line
    assert list(outputs.iterdir()) == []  # no partial or temporary file
