"""Writing a plugin into a folder as an installer would leave it: what tests and benchmarks
use for a real entry point without building a wheel (``hookline.testing.write_installed``)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_installed"]


def write_installed(site: str | os.PathLike[str], name: str, source: str, *,
                    version: str = "1.0") -> Path:
    """Write plugin ``name`` into the folder ``site`` as an installer would leave it: the
    module ``NAME_plugin`` (``source``) and the metadata of the distribution ``NAME-plugin``
    ``version`` with its entry point ``NAME`` in ``hookline.plugins``. With ``site`` on
    ``sys.path`` or ``PYTHONPATH``, discovery finds it like a pip-installed plugin, in this
    process and in any other: for tests and benchmarks that need a real entry point without
    building a wheel. Returns ``site``.
    """
    folder = Path(site)
    package = folder / f"{name}_plugin"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(source, encoding="utf-8")
    info = folder / f"{name}_plugin-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[hookline.plugins]\n{name} = {name}_plugin\n",
                                           encoding="utf-8")
    return folder
