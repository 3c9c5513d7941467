"""Where the bundled templates, catalogs and sample files are.

A wheel carries ``templates/`` and ``locales/`` inside the package (``_bundled``, see the
hatch ``force-include`` in ``pyproject.toml``); an editable checkout has them at the top
of the repository. Either way the package finds them without the current directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def bundled(name: str) -> Path:
    """Return the bundled directory ``name`` (``templates`` or ``locales``)."""
    installed = _PACKAGE / "_bundled" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def package_data(name: str) -> Path:
    """Return a data file that lives inside the package itself."""
    return _PACKAGE / name


def sample(name: str) -> Path:
    """The bundled sample ``content`` folder or ``subscriptions.yaml``, for the demo."""
    installed = _PACKAGE / "_bundled" / "sample" / name
    if installed.exists():
        return installed
    return _PACKAGE.parent / name
