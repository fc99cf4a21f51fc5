"""Configuration: ``hookline.toml`` or ``[tool.hookline]`` in ``pyproject.toml``, then env.

Keys (file) and their environment variables, which win over the file:

=====================  ==================================  ===============================
key                    environment                         meaning
=====================  ==================================  ===============================
``plugins``            ``HOOKLINE_PLUGINS=a,b``            load only these plugins
``disable_plugins``    ``HOOKLINE_DISABLE_PLUGINS=c``      never load these
``disable_plugin_autoload``  ``HOOKLINE_DISABLE_PLUGIN_AUTOLOAD=1``  load only ``plugins``
``allow_broken_plugins``  ``HOOKLINE_ALLOW_BROKEN_PLUGINS=1``  run without plugins that fail to load
``strict``             ``HOOKLINE_STRICT=1``               refuse broken plugins even if allowed
``batch_size``                                             events per committed batch
``stage_timeout``      ``HOOKLINE_STAGE_TIMEOUT=30``       seconds a stage call may run (0/off)
``async_concurrency``                                      async stage calls in flight at once
``[settings.NAME]``                                        settings of plugin NAME's stages
``[flags]``            ``HOOKLINE_FLAGS="a=on,b=0.25"``    feature flag values (see flags)
``[behaviors]``                                            behaviours injected around stages
``[error_policy]``                                         dead-letter, skip-plugin, fail-run
=====================  ==================================  ===============================
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Config", "ConfigError", "load_config"]


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ConfigError(f"{where} must be a list of plugin names, not {value!r}")


def _flag(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Config:
    """Everything a pipeline or run is built from. Immutable; derive with :meth:`with_`."""

    plugins: tuple[str, ...] | None = None
    disable_plugins: tuple[str, ...] = ()
    autoload: bool = True
    #: Run without the selected plugins that fail to load (hookline fails closed by default).
    allow_broken_plugins: bool = False
    #: Refuse to run when a selected plugin fails to load, even if ``allow_broken_plugins``.
    strict: bool = False
    batch_size: int = 5000
    plugin_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: ``[flags]`` of the config file, and ``--flag`` of the command line.
    flags: Mapping[str, Any] = field(default_factory=dict)
    cli_flags: Mapping[str, Any] = field(default_factory=dict)
    #: Error policy per plugin or stage name: dead-letter (default), skip-plugin, fail-run.
    error_policy: Mapping[str, str] = field(default_factory=dict)
    #: Quarantine a stage after this many failures in a row (0: never).
    quarantine_after: int = 100
    #: A run whose dead-letter share exceeds this exits with status 3 (None: no limit).
    max_dead_letter_ratio: float | None = None
    #: One event in this many is timed per stage (1: every event, as ``--profile``).
    sample_every: int = 16
    #: ``[behaviors]``: stage-name pattern -> behaviour specs injected around those stages.
    behaviors: Mapping[str, Any] = field(default_factory=dict)
    source: str = "defaults"
    #: Seconds a stage call may run before its event is dead-lettered (0: no limit).
    stage_timeout: float = 30.0
    #: Events of a batch in async stages at once (their awaits overlap).
    async_concurrency: int = 100
    #: The ``HOOKLINE_*`` environment variables as they were when the configuration was read,
    #: before any plugin was imported (None: read ``os.environ`` when needed).
    environment: Mapping[str, str] | None = None

    @property
    def fail_closed(self) -> bool:
        """Whether a selected plugin that fails to load stops the run before it starts."""
        return self.strict or not self.allow_broken_plugins

    def with_(self, **changes: Any) -> Config:
        return replace(self, **changes)

    def selects(self, name: str) -> bool:
        """Whether the plugin ``name`` is to be loaded (a plugin not selected is never imported)."""
        if name in self.disable_plugins:
            return False
        if self.plugins is not None:
            return name in self.plugins
        return self.autoload

    def settings_for(self, plugin: str) -> Mapping[str, Any]:
        return self.plugin_settings.get(plugin, {})

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugins": list(self.plugins) if self.plugins is not None else None,
            "disable_plugins": list(self.disable_plugins),
            "autoload": self.autoload,
            "allow_broken_plugins": self.allow_broken_plugins,
            "strict": self.strict,
            "batch_size": self.batch_size,
            "plugin_settings": {k: dict(v) for k, v in self.plugin_settings.items()},
            "flags": dict(self.flags),
            "cli_flags": dict(self.cli_flags),
            "error_policy": dict(self.error_policy),
            "quarantine_after": self.quarantine_after,
            "max_dead_letter_ratio": self.max_dead_letter_ratio,
            "sample_every": self.sample_every,
            "behaviors": {k: v for k, v in self.behaviors.items()},
            "source": self.source,
            "stage_timeout": self.stage_timeout,
            "async_concurrency": self.async_concurrency,
            "environment": None if self.environment is None else dict(self.environment),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """The inverse of :meth:`as_dict` (how a configuration travels to worker processes)."""
        values = dict(data)
        if values.get("plugins") is not None:
            values["plugins"] = tuple(values["plugins"])
        values["disable_plugins"] = tuple(values.get("disable_plugins", ()))
        return cls(**values)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "mapping") -> Config:
        known = {"plugins", "disable_plugins", "disable_plugin_autoload",
                 "allow_broken_plugins", "strict", "batch_size",
                 "settings", "flags", "error_policy", "quarantine_after",
                 "max_dead_letter_ratio", "sample_every", "behaviors", "stage_timeout",
                 "async_concurrency"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown setting(s) {', '.join(unknown)}")
        settings: dict[str, Mapping[str, Any]] = {}
        for name, table in dict(data.get("settings", {})).items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"{source}: [settings.{name}] must be a table")
            settings[name] = dict(table)
        plugins = data.get("plugins")
        batch_size = data.get("batch_size", 5000)
        if type(batch_size) is not int or batch_size < 1:
            raise ConfigError(
                f"{source}: batch_size must be a positive integer, not {batch_size!r}")
        return cls(
            plugins=None if plugins is None else _names(plugins, f"{source}: plugins"),
            disable_plugins=_names(data.get("disable_plugins", ()), f"{source}: disable_plugins"),
            autoload=not data.get("disable_plugin_autoload", False),
            allow_broken_plugins=_boolean(data.get("allow_broken_plugins", False),
                                          "allow_broken_plugins", source),
            strict=bool(data.get("strict", False)),
            batch_size=batch_size,
            plugin_settings=settings,
            flags=dict(data.get("flags", {})),
            error_policy=_policies(data.get("error_policy", {}), source),
            quarantine_after=_count(data.get("quarantine_after", 100), "quarantine_after", source),
            max_dead_letter_ratio=_ratio(data.get("max_dead_letter_ratio"), source),
            sample_every=max(1, _count(data.get("sample_every", 16), "sample_every", source)),
            behaviors=_behaviors(data.get("behaviors", {}), source),
            source=source,
            stage_timeout=_seconds(data.get("stage_timeout", 30.0), "stage_timeout", source),
            async_concurrency=max(1, _count(data.get("async_concurrency", 100),
                                            "async_concurrency", source)),
        )


def _policies(value: Any, source: str) -> dict[str, str]:
    allowed = ("dead-letter", "skip-plugin", "fail-run")
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: error_policy must be a table of name = policy")
    for name, policy in value.items():
        if policy not in allowed:
            raise ConfigError(f"{source}: error_policy.{name} = {policy!r}; use one of "
                              f"{', '.join(allowed)}")
    return dict(value)


def _behaviors(table: Any, source: str) -> dict[str, Any]:
    """Check a ``[behaviors]`` table now, so a typo fails before any event is read."""
    from .behaviors import BehaviorError, parse_table

    try:
        parse_table(table, source=f"{source} [behaviors]")
    except BehaviorError as exc:
        raise ConfigError(str(exc)) from None
    return dict(table)


def _boolean(value: Any, key: str, source: str) -> bool:
    if type(value) is not bool:
        raise ConfigError(f"{source}: {key} must be true or false, not {value!r}")
    return value


def _seconds(value: Any, key: str, source: str) -> float:
    """A time limit: seconds > 0, or 0 / "off" for none."""
    if value == "off" or (type(value) is str and value.strip().lower() in ("off", "0")):
        return 0.0
    if type(value) is str:
        try:
            value = float(value)
        except ValueError:
            pass
    if type(value) not in (int, float) or not 0 <= value < 1e9 or value != value:
        raise ConfigError(f"{source}: {key} must be seconds ≥ 0, or \"off\", not {value!r}")
    return float(value)


def _count(value: Any, key: str, source: str) -> int:
    if type(value) is not int or value < 0:
        raise ConfigError(f"{source}: {key} must be a whole number ≥ 0, not {value!r}")
    return value


def _ratio(value: Any, source: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not 0 <= value <= 1:
        raise ConfigError(f"{source}: max_dead_letter_ratio must be between 0 and 1, "
                          f"not {value!r}")
    return float(value)


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _file_config(folder: Path) -> tuple[dict[str, Any], str]:
    own = folder / "hookline.toml"
    if own.is_file():
        return _read_toml(own), str(own)
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("hookline")
        if table is not None:
            return dict(table), f"{pyproject} [tool.hookline]"
    return {}, "defaults"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Read ``path`` (or the current folder's files), then apply the environment on top.

    The ``HOOKLINE_*`` variables are kept in :attr:`Config.environment` as they are now: what a
    plugin's import later does to ``os.environ`` changes no flag of this configuration.
    """
    env = os.environ if env is None else env
    if path is not None:
        file_path = Path(path)
        if not file_path.is_file():
            raise ConfigError(f"config file {file_path} does not exist")
        data = _read_toml(file_path)
        if file_path.name == "pyproject.toml":
            data = dict(data.get("tool", {}).get("hookline", {}))
        config = Config.from_mapping(data, source=str(file_path))
    else:
        data, source = _file_config(Path.cwd())
        config = Config.from_mapping(data, source=source)
    if env.get("HOOKLINE_PLUGINS", "").strip():
        config = config.with_(plugins=_names(env["HOOKLINE_PLUGINS"], "HOOKLINE_PLUGINS"))
    if env.get("HOOKLINE_DISABLE_PLUGINS", "").strip():
        extra = _names(env["HOOKLINE_DISABLE_PLUGINS"], "HOOKLINE_DISABLE_PLUGINS")
        config = config.with_(disable_plugins=config.disable_plugins + extra)
    if _flag(env.get("HOOKLINE_DISABLE_PLUGIN_AUTOLOAD", "")):
        config = config.with_(autoload=False)
    if _flag(env.get("HOOKLINE_ALLOW_BROKEN_PLUGINS", "")):
        config = config.with_(allow_broken_plugins=True)
    if _flag(env.get("HOOKLINE_STRICT", "")):
        config = config.with_(strict=True)
    if env.get("HOOKLINE_STAGE_TIMEOUT", "").strip():
        config = config.with_(stage_timeout=_seconds(env["HOOKLINE_STAGE_TIMEOUT"],
                                                     "HOOKLINE_STAGE_TIMEOUT", "environment"))
    return config.with_(environment=hookline_environment(env))


def hookline_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``HOOKLINE_*`` variables of ``env`` (``os.environ``), as they are now."""
    env = os.environ if env is None else env
    return {name: value for name, value in env.items() if name.startswith("HOOKLINE_")}
