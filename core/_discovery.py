"""Finding installed plugins: the ``hookline.plugins`` entry points, with a warm cache.

Scanning every installed distribution's metadata costs tens of milliseconds plus the import
of :mod:`importlib.metadata` itself (~40 ms). hookline keeps the result in a small JSON file
keyed on what pip changes when it installs or removes a distribution: the modification time
of every ``sys.path`` directory (pip adds or deletes a ``*.dist-info`` folder there). So the
cache is never stale after ``pip install``/``pip uninstall``, works from any folder (there is
no special case for interpreters under /tmp), and a warm start never imports
``importlib.metadata``. ``HOOKLINE_NO_CACHE=1`` bypasses it.

The scan also keeps the entry points of groups that look like hookline's but are not
(``hookline.plugin``, ``hookline_plugins``): a typo there would otherwise leave a plugin
silently unloaded; :func:`lookalikes` lists them for the commands to warn about. And it finds
the plugins of a ``plugins_dir`` (:func:`local_plugins`): ``*.py`` files, not distributions.
"""


from __future__ import annotations

import json
import os
import sys
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

from ._version import __version__

if TYPE_CHECKING:
    from pathlib import Path

# A warm start imports only what reading the cache needs: json, and zlib to name the file.
# hashlib (OpenSSL), tempfile (shutil, random, bz2, lzma), pathlib (urllib.parse, ipaddress)
# and dataclasses cost more than the rest of a warm listing; the cold path imports its own.

__all__ = ["BACKEND_GROUP", "PLUGIN_GROUP", "EntryPointInfo", "LocalPlugin", "cache_dir",
           "cache_path", "installed", "local_plugins", "lookalikes", "meant_group"]

PLUGIN_GROUP = "hookline.plugins"
BACKEND_GROUP = "hookline.backends"
_GROUPS = (PLUGIN_GROUP, BACKEND_GROUP)
_CACHE_FORMAT = 3  # 2: every distribution declaring a name is kept; 3: lookalike groups
#: The groups as :func:`_normal` writes them, to compare a group's spelling with.
_NORMAL_GROUPS = {"hooklineplugins": PLUGIN_GROUP, "hooklinebackends": BACKEND_GROUP}
#: How close (difflib's ratio) a group's spelling must be to one of hookline's to be warned of.
_LOOKALIKE = 0.85


class EntryPointInfo(NamedTuple):
    """One entry point: its name, ``module[:attr]`` value, and the distribution declaring it."""

    name: str
    value: str
    group: str
    distribution: str
    version: str

    @property
    def module(self) -> str:
        return self.value.partition(":")[0].strip()

    @property
    def attr(self) -> str | None:
        attr = self.value.partition(":")[2].strip()
        return attr or None

    @property
    def label(self) -> str:
        """``hookline-fraud 1.2.0``: how messages name where a plugin came from."""
        return f"{self.distribution} {self.version}"


class LocalPlugin(NamedTuple):
    """A plugin of a ``plugins_dir``: a ``*.py`` file, named after it (``geo.py``: ``geo``)."""

    name: str
    path: str

    @property
    def module(self) -> str:
        """The name it is imported under: ``hookline_local_geo`` (never shadowing a module)."""
        return f"hookline_local_{self.name}"


def local_plugins(folder: str) -> list[LocalPlugin]:
    """The plugins of ``folder``: each ``*.py`` file in it, sorted by name; files whose name
    starts with ``_`` are helpers, not plugins. A name that cannot be a plugin's is the
    loader's to refuse, naming the file."""
    with os.scandir(folder) as entries:
        files = sorted(e.name for e in entries if e.name.endswith(".py") and e.is_file())
    return [LocalPlugin(name[:-3], os.path.join(folder, name)) for name in files
            if not name.startswith("_")]


def _normal(group: str) -> str:
    return "".join(ch for ch in group.lower() if ch.isalnum())


def _looks_like_ours(group: str) -> bool:
    """Whether ``group`` is spelt like one of hookline's groups without being one."""
    if group in _GROUPS:
        return False
    normal = _normal(group)
    if "hook" not in normal and "line" not in normal:
        return False  # nearly every group: no difflib for it
    import difflib

    return any(difflib.SequenceMatcher(None, normal, ours).ratio() >= _LOOKALIKE
               for ours in _NORMAL_GROUPS)


def meant_group(group: str) -> str:
    """The hookline group a lookalike ``group`` was meant to be."""
    import difflib

    normal = _normal(group)
    return max(_NORMAL_GROUPS.items(),
               key=lambda item: difflib.SequenceMatcher(None, normal, item[0]).ratio())[1]


def cache_dir() -> str:
    """hookline's cache folder: ``HOOKLINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/hookline``, else
    ``~/.cache/hookline`` (the discovery cache and ``--demo``'s events live there)."""
    explicit = os.environ.get("HOOKLINE_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "hookline")


def _cache_file() -> str:
    # crc32 only names the file: the fingerprint holds the prefix and the executable, so two
    # environments whose names collide rescan instead of reading each other's plugins.
    ident = f"{sys.prefix}\0{sys.executable}".encode()
    return os.path.join(cache_dir(), f"entry-points-{zlib.crc32(ident):08x}.json")


def cache_path() -> Path:
    """The cache file of this interpreter (one per environment)."""
    from pathlib import Path

    return Path(_cache_file())


def _metadata_names(path: str) -> list[str]:
    try:
        with os.scandir(path) as entries:
            return sorted(e.name for e in entries if e.name.endswith((".dist-info", ".egg-info")))
    except OSError:
        return []


def _fingerprint() -> list[Any]:
    """What changes when a distribution is installed or removed on ``sys.path``.

    For site directories, their modification time (pip adds or removes a ``.dist-info``
    folder there). The first entry is the script's folder or the working directory, whose
    time changes with every file a user writes (``hookline.db``…); for it, the names of
    the metadata folders it holds.
    """
    stamp: list[Any] = [sys.version, __version__, _CACHE_FORMAT, sys.prefix, sys.executable]
    for index, entry in enumerate(sys.path):
        path = entry or os.getcwd()
        if index == 0 and "site-packages" not in path:
            stamp.append([path, _metadata_names(path)])
            continue
        try:
            st = os.stat(path)
        except OSError:
            stamp.append([path, None])
            continue
        stamp.append([path, st.st_mtime_ns, st.st_ino])
    return stamp


def _scan() -> list[EntryPointInfo]:
    if sys.version_info >= (3, 12):
        from importlib.metadata import distributions
    else:  # the backport: one behaviour (deduplication, selection) on 3.10 and 3.11
        from importlib_metadata import distributions

    found: dict[tuple[str, str, str], EntryPointInfo] = {}
    for dist in distributions():
        entry_points = [ep for ep in dist.entry_points
                        if ep.group in _GROUPS or _looks_like_ours(ep.group)]
        if not entry_points:
            continue  # most distributions: their METADATA is never parsed
        metadata = dist.metadata  # parsed once, for the name and the version
        name, version = metadata["Name"] or "?", metadata["Version"] or "?"
        project = name.lower().replace("_", "-").replace(".", "-")
        for ep in entry_points:
            # A distribution found twice (on two sys.path entries): the first wins, as it
            # does for imports. Two distributions declaring one name are both kept, in
            # sys.path order: the loader refuses that name, naming both.
            found.setdefault((ep.group, ep.name, project),
                             EntryPointInfo(ep.name, ep.value, ep.group, name, version))
    return sorted(found.values(), key=lambda ep: (ep.group, ep.name))  # stable: path order


def _read_cache(path: str, fingerprint: list[Any]) -> list[EntryPointInfo] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("fingerprint") != fingerprint:
            return None
        return [EntryPointInfo(**item) for item in data["entry_points"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: str, fingerprint: list[Any], found: list[EntryPointInfo]) -> None:
    import tempfile

    try:
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        payload = {"fingerprint": fingerprint, "entry_points": [ep._asdict() for ep in found]}
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".entry-points-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old or the new file
    except OSError:
        pass  # a read-only home only costs the next start a rescan


def installed(group: str = PLUGIN_GROUP, *, use_cache: bool | None = None) -> list[EntryPointInfo]:
    """Every entry point of ``group`` installed in this environment, sorted by name.

    A name that two distributions declare appears once for each (the loader refuses it).
    """
    return [ep for ep in _entry_points(use_cache) if ep.group == group]


def lookalikes(*, use_cache: bool | None = None) -> list[EntryPointInfo]:
    """The entry points of groups spelt like hookline's but not hookline's (``hookline.plugin``,
    ``hookline_plugins``): hookline does not load them; the commands warn about each."""
    return [ep for ep in _entry_points(use_cache) if ep.group not in _GROUPS]


#: The last cache read in this process: a command asks for its plugins, then for the
#: lookalikes, and the file is parsed once while the fingerprint stays the same.
_last: tuple[list[Any], str, list[EntryPointInfo]] | None = None


def _entry_points(use_cache: bool | None) -> list[EntryPointInfo]:
    global _last
    if use_cache is None:
        use_cache = os.environ.get("HOOKLINE_NO_CACHE", "") in ("", "0")
    found: list[EntryPointInfo] | None = None
    if use_cache:
        fingerprint = _fingerprint()
        path = _cache_file()
        if _last is not None and _last[:2] == (fingerprint, path):
            return _last[2]
        found = _read_cache(path, fingerprint)
        if found is None:
            found = _scan()
            _write_cache(path, fingerprint, found)
        _last = (fingerprint, path, found)
    else:
        found = _scan()
    return found
