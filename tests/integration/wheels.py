"""Write real wheel files for plugin distributions made up by a test.

A wheel is a zip archive with a ``.dist-info`` folder; writing one directly lets a test make
dozens of distinct plugin distributions in milliseconds, which pip then installs for real.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
import zipfile
from pathlib import Path


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    folder: Path,
    distribution: str,
    files: dict[str, str],
    entry_points: dict[str, str],
    *,
    version: str = "1.0.0",
    requires: tuple[str, ...] = (),
) -> Path:
    """A wheel of ``distribution`` holding ``files`` (path -> source) and declaring
    ``entry_points`` (name -> value) in the ``hookline.plugins`` group."""
    normal = distribution.replace("-", "_")
    info = f"{normal}-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.1", f"Name: {distribution}", f"Version: {version}",
        *(f"Requires-Dist: {req}" for req in requires), "",
    ])
    contents = {path: textwrap.dedent(source) for path, source in files.items()}
    contents[f"{info}/METADATA"] = metadata
    contents[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: hookline-tests\n"
                                 "Root-Is-Purelib: true\nTag: py3-none-any\n")
    contents[f"{info}/entry_points.txt"] = "[hookline.plugins]\n" + "".join(
        f"{name} = {value}\n" for name, value in entry_points.items())
    contents[f"{info}/top_level.txt"] = "\n".join(
        sorted({path.split("/")[0].removesuffix(".py") for path in files})) + "\n"
    record = [f"{path},{_digest(text.encode())},{len(text.encode())}"
              for path, text in contents.items()]
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = "\n".join(record) + "\n"
    target = folder / f"{normal}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w") as archive:
        for path, text in contents.items():
            archive.writestr(path, text)
    return target
