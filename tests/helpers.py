"""Plain helpers shared by test modules in several directories.

Import them as ``from helpers import ...``: like ``conftest``, this module sits in ``tests/``,
which pytest puts on ``sys.path`` when it loads ``tests/conftest.py``. (Helpers live here, not
in a sub-directory's ``conftest.py``: every ``conftest.py`` outside a package is imported as
the module ``conftest``, so a second one would shadow ``tests/conftest.py`` for the
``from conftest import ...`` of modules collected after it.)
"""

from __future__ import annotations

from typing import Any

from piddm.nets import UNet, UNetConfig, build_unet

#: The smallest useful U-Net: 8 base channels, two levels, one res block, no attention.
TINY_UNET: dict[str, Any] = {
    "base_channels": 8,
    "channel_mult": (1, 2),
    "num_res_blocks": 1,
    "attention": False,
}


def tiny_unet(channels: int = 2, **overrides: Any) -> UNet:
    """A tiny random U-Net for ``channels``-channel fields; ``overrides`` replace
    :data:`TINY_UNET` entries or add other :class:`UNetConfig` fields. Seed torch first for
    reproducible weights."""
    return build_unet(UNetConfig(in_channels=channels, **{**TINY_UNET, **overrides}))


def cli_run(args: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run the ``piddm`` CLI in-process with ``args``: ``(exit code, stdout, stderr)``."""
    import pytest

    from piddm.cli import main

    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


def cli_user_error(capsys: Any, *args: str) -> str:
    """Run the ``piddm`` CLI in-process with ``args``; assert that it failed as a user error
    (exit 2, one ``error: ...`` line on stderr, nothing on stdout) and return that line."""
    code, out, err = cli_run(list(args), capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and out == "", err
    return lines[0]


def flip_bit(path: Any, offset: int, bit: int = 0) -> None:
    """Flip one bit of the byte at ``offset`` of the file ``path`` in place."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ (1 << bit)]))
