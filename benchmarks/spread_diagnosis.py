"""Where a sample set's pointwise spread differs from the reference's, per channel.

Usage: python benchmarks/spread_diagnosis.py SAMPLES.h5 REFERENCE.h5

Prints, per channel, the mean over nodes of ``std_gen - std_ref`` (normalised units, the
units of SMSE; negative = the samples are less spread than the data) and that channel's
SMSE. For a two-phase coefficient (Darcy) also the fraction of generated coefficient values
in the middle third between the phases, where solver data has none.
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from piddm.data import read_dataset


def main() -> None:
    samples, reference = read_dataset(sys.argv[1]), read_dataset(sys.argv[2])
    pde = reference.pde

    def normalised(fields: np.ndarray) -> np.ndarray:
        return pde.normalisation.normalise(torch.from_numpy(fields.astype(np.float64))).numpy()

    gap = normalised(samples.fields).std(axis=0) - normalised(reference.fields).std(axis=0)
    for c, name in enumerate(pde.channels):
        print(f"{name}: mean std gap {gap[c].mean():+.4f}, SMSE {np.mean(gap[c] ** 2):.3g}")
    if "a_low" in pde.params:
        low, high = pde.params["a_low"], pde.params["a_high"]
        a = samples.fields[:, pde.coefficient_channel]
        third = (high - low) / 3
        between = np.mean((a > low + third) & (a < high - third))
        print(f"coefficient values in the middle third between the phases: {between:.1%}")


if __name__ == "__main__":
    main()
