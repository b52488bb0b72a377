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

from piddm.data import read_dataset
from piddm.metrics import _normalised, moment_errors


def main() -> None:
    samples, reference = read_dataset(sys.argv[1]), read_dataset(sys.argv[2])
    pde = reference.pde
    # The normalised units of piddm.metrics.evaluate's SMSE.
    gen, ref = _normalised(pde, samples.fields), _normalised(pde, reference.fields)
    gap = gen.std(axis=0) - ref.std(axis=0)
    for c, name in enumerate(pde.channels):
        smse = moment_errors(gen[:, c], ref[:, c])[1]
        print(f"{name}: mean std gap {gap[c].mean():+.4f}, SMSE {smse:.3g}")
    if "a_low" in pde.params:
        low, high = pde.params["a_low"], pde.params["a_high"]
        a = samples.fields[:, pde.coefficient_channel]
        third = (high - low) / 3
        between = np.mean((a > low + third) & (a < high - third))
        print(f"coefficient values in the middle third between the phases: {between:.1%}")


if __name__ == "__main__":
    main()
