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
``plugins_dir``                                            load each ``*.py`` there as a plugin
``batch_size``                                             events per committed batch
``stage_timeout``      ``HOOKLINE_STAGE_TIMEOUT=30``       seconds a stage call may run (0/off)
``async_concurrency``                                      async stage calls in flight at once
``[settings.NAME]``                                        settings of plugin NAME's stages
``[flags]``            ``HOOKLINE_FLAGS="a=on,b=0.25"``    feature flag values (see flags)
``[behaviors]``                                            behaviours injected around stages
``[error_policy]``                                         dead-letter, skip-plugin, fail-run
                       ``HOOKLINE_TRACE_HOOKS=1``          log each phase implementation call
=====================  ==================================  ===============================

A string anywhere in ``[settings.NAME]`` may be written ``{ env = "VARIABLE" }``: a secret,
read from the environment when the configuration is loaded (a variable that is not set is a
:class:`ConfigError` naming it). The configuration keeps the reference, never the value:
:meth:`Config.as_dict` (what ``hookline_configure``, the stored run and worker processes get)
shows ``{"env": "VARIABLE"}``, and only :meth:`Config.settings_for`, which hands a plugin its
settings, puts the value in.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._suggest import did_you_mean
from .errors import ConfigError

__all__ = ["KEYS", "Config", "ConfigError", "from_arguments", "load_config"]

#: Every key of a configuration file (``hookline.toml``, ``[tool.hookline]``).
KEYS = ("plugins", "disable_plugins", "disable_plugin_autoload", "allow_broken_plugins",
        "strict", "plugins_dir", "batch_size", "settings", "flags", "error_policy",
        "quarantine_after", "max_dead_letter_ratio", "sample_every", "behaviors",
        "stage_timeout", "async_concurrency")


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
    #: A folder whose ``*.py`` files are loaded as plugins, each named after its file.
    plugins_dir: str | None = None
    #: Log each phase implementation call (plugin, stage, duration, outcome): ``--trace-hooks``.
    trace_hooks: bool = False
    #: With ``trace_hooks``, log one call in this many of each implementation.
    trace_sample: int = 1
    #: The values of the secrets of ``plugin_settings`` (``{ env = "NAME" }``), by variable
    #: name, as the environment had them at load. Never shown, compared or sent anywhere: a
    #: configuration rebuilt from :meth:`as_dict` (a worker's) reads its own environment.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

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
        """The settings of plugin ``plugin``, with the values of its secrets put in."""
        table = self.plugin_settings.get(plugin, {})
        if not _has_secret(table):
            return table
        resolved: dict[str, Any] = _resolved(table, self.secrets, os.environ,
                                             f"[settings.{plugin}]")
        return resolved

    def masked(self, text: str) -> str:
        """``text`` with the value of every secret of the settings written ``{env NAME}``
        (for an error message that quotes a setting's value)."""
        for name in {name for table in self.plugin_settings.values()
                     for name in secret_names(table)}:
            value = self.secrets.get(name, os.environ.get(name, ""))
            if len(value) >= 4:  # shorter ones are no secret, and would garble the text
                text = text.replace(value, f"{{env {name}}}")
        return text

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
            "plugins_dir": self.plugins_dir,
            "trace_hooks": self.trace_hooks,
            "trace_sample": self.trace_sample,
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
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "mapping",
                     folder: str | os.PathLike[str] | None = None) -> Config:
        """A configuration from a file's table. ``folder``: where a relative ``plugins_dir``
        starts (the file's folder; default the current one)."""
        unknown = [key for key in data if key not in KEYS]
        if unknown:
            raise ConfigError(_unknown_keys(unknown, source))
        settings: dict[str, Mapping[str, Any]] = {}
        for name, table in dict(data.get("settings", {})).items():
            if not isinstance(table, Mapping):
                raise ConfigError(f"{source}: [settings.{name}] must be a table")
            _check_secrets(table, f"{source}: [settings.{name}]")
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
            flags=_flat(data.get("flags", {}), "flags", source),
            error_policy=_policies(_flat(data.get("error_policy", {}), "error_policy", source),
                                   source),
            quarantine_after=_count(data.get("quarantine_after", 100), "quarantine_after", source),
            max_dead_letter_ratio=_ratio(data.get("max_dead_letter_ratio"), source),
            sample_every=max(1, _count(data.get("sample_every", 16), "sample_every", source)),
            behaviors=_behaviors(data.get("behaviors", {}), source),
            source=source,
            stage_timeout=_seconds(data.get("stage_timeout", 30.0), "stage_timeout", source),
            async_concurrency=max(1, _count(data.get("async_concurrency", 100),
                                            "async_concurrency", source)),
            plugins_dir=(None if data.get("plugins_dir") is None
                         else plugins_folder(data["plugins_dir"], f"{source}: plugins_dir",
                                             folder)),
        )


def _unknown_keys(unknown: list[str], source: str) -> str:
    """One line per unknown key, with the closest known one (``[behaviours]``: behaviors)."""
    lines = [f"unknown key {key!r}{did_you_mean(key, KEYS)}" for key in unknown]
    if len(lines) == 1:
        return f"{source}: {lines[0]} (the keys: {', '.join(KEYS)})"
    return f"{source}: {len(lines)} unknown keys:\n  " + "\n  ".join(lines)


def plugins_folder(value: Any, where: str, folder: str | os.PathLike[str] | None = None
                   ) -> str:
    """``value`` as the absolute path of an existing folder (relative to ``folder``)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be the path of a folder, not {value!r}")
    path = Path(folder or Path.cwd()) / Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{where}: {str(path)!r} is not a folder (the folder of *.py "
                          "files to load as plugins)")
    return str(path.resolve())


def _flat(table: Any, key: str, source: str) -> dict[str, Any]:
    """A ``[flags]`` or ``[error_policy]`` table, whose names hold dots: a bare dotted key
    (``ranking.score = …``) is a nested table in TOML, so such a table is refused with the
    quoted line to write instead."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: [{key}] must be a table of names to values")
    nested = [(name, value) for name, value in _dotted(table) if "." in name]
    if any(isinstance(value, Mapping) for value in table.values()):
        fixes = "; ".join(f"{name} = {_toml(value)} must be written "
                          f'"{name}" = {_toml(value)}' for name, value in nested)
        raise ConfigError(f"{source}: [{key}] holds a table where a value belongs: TOML reads "
                          f"an unquoted dotted name as nested tables. Quote the name: {fixes}")
    return dict(table)


def _dotted(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` as ``[("a.b", 1)]``: the names a nested table was meant to hold."""
    found: list[tuple[str, Any]] = []
    for name, value in table.items():
        if isinstance(value, Mapping):
            found += _dotted(value, f"{prefix}{name}.")
        else:
            found.append((f"{prefix}{name}", value))
    return found


def _toml(value: Any) -> str:
    """``value`` as TOML writes it (a few scalar types are all a flag or policy takes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


# -- secrets: { env = "NAME" } -----------------------------------------------------------------


def _is_secret(value: Any) -> bool:
    """A secret's reference: a table whose only key is ``env``."""
    return isinstance(value, Mapping) and len(value) == 1 and "env" in value


def _has_secret(value: Any) -> bool:
    if _is_secret(value):
        return True
    if isinstance(value, Mapping):
        return any(_has_secret(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_secret(item) for item in value)
    return False


def secret_names(value: Any) -> list[str]:
    """The environment variables the secrets in ``value`` (a settings table) read."""
    if _is_secret(value):
        return [value["env"]]
    if isinstance(value, Mapping):
        return [name for item in value.values() for name in secret_names(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in secret_names(item)]
    return []


def _check_secrets(value: Any, where: str) -> None:
    """Refuse a malformed reference (``{ env = 3 }``) when the file is read."""
    if _is_secret(value):
        name = value["env"]
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ConfigError(f"{where}: {{ env = {name!r} }} must name an environment "
                              'variable, as in { env = "FRAUD_API_TOKEN" }')
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_secrets(item, f"{where} {key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_secrets(item, f"{where}[{index}]")


def _resolved(value: Any, secrets: Mapping[str, str], env: Mapping[str, str],
              where: str) -> Any:
    """``value`` with each secret's reference replaced by the variable's value."""
    if _is_secret(value):
        name = value["env"]
        found = secrets.get(name, env.get(name))
        if found is None:
            raise ConfigError(_unset(name, where))
        return found
    if isinstance(value, Mapping):
        return {key: _resolved(item, secrets, env, f"{where} {key}")
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolved(item, secrets, env, where) for item in value]
    return value


def _unset(name: str, where: str) -> str:
    return (f"{where}: the environment variable {name} is not set ({{ env = \"{name}\" }} "
            f"reads the value from it): export {name}=... before running hookline")


def _read_secrets(config: Config, env: Mapping[str, str]) -> dict[str, str]:
    """The value of every secret ``config`` refers to, from ``env``; a ConfigError naming the
    first variable that is not set."""
    values: dict[str, str] = {}
    for plugin, table in config.plugin_settings.items():
        for name in secret_names(table):
            if name not in env:
                raise ConfigError(_unset(name, f"{config.source}: [settings.{plugin}]"))
            values[name] = env[name]
    return values


def _policies(value: Mapping[str, Any], source: str) -> dict[str, str]:
    allowed = ("dead-letter", "skip-plugin", "fail-run")
    for name, policy in value.items():
        if policy not in allowed:
            hint = did_you_mean(policy, allowed) if isinstance(policy, str) else ""
            raise ConfigError(f"{source}: error_policy.{name} = {policy!r}{hint}; use one of "
                              f"{', '.join(allowed)}")
    return dict(value)


def _behaviors(table: Any, source: str) -> dict[str, Any]:
    """Check a ``[behaviors]`` table now, so a typo fails before any event is read."""
    from .behaviors import FACTORIES, BehaviorError, parse_table

    if isinstance(table, Mapping):
        # A bare dotted pattern (fraud.velocity = [...]) is a nested table in TOML; a table
        # value is otherwise a one-key behaviour spec ({ retry = { attempts = 3 } }), maybe
        # misspelt ({ retyr = ... }: the spec's own error says so).
        nested = [name for pattern, value in table.items()
                  if isinstance(value, Mapping) and not _spec_like(value, FACTORIES)
                  for name, _ in _dotted(value, f"{pattern}.")]
        if nested:
            fixes = "; ".join(f'write "{name}" = [...]' for name in nested)
            raise ConfigError(f"{source}: [behaviors] holds a table where a list of "
                              "behaviours belongs: TOML reads an unquoted dotted pattern as "
                              f"nested tables. Quote the pattern: {fixes}")
    try:
        parse_table(table, source=f"{source} [behaviors]")
    except BehaviorError as exc:
        raise ConfigError(str(exc)) from None
    return dict(table)


def _spec_like(value: Mapping[str, Any], behaviors: Mapping[str, Any]) -> bool:
    """Whether a table is a one-key behaviour spec (or a misspelt one), not a pattern cut in
    two by TOML: its key is a behaviour's name or close to one, and its value no list."""
    if len(value) != 1:
        return False
    ((name, arguments),) = value.items()
    return not isinstance(arguments, (list, tuple)) and (
        name in behaviors or bool(did_you_mean(name, behaviors)))


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
        config = Config.from_mapping(data, source=str(file_path), folder=file_path.parent)
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
    if _flag(env.get("HOOKLINE_TRACE_HOOKS", "")):
        config = config.with_(trace_hooks=True)
    return config.with_(environment=hookline_environment(env),
                        secrets=_read_secrets(config, env))


def hookline_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``HOOKLINE_*`` variables of ``env`` (``os.environ``), as they are now."""
    env = os.environ if env is None else env
    return {name: value for name, value in env.items() if name.startswith("HOOKLINE_")}


def from_arguments(args: Any) -> Config:
    """The configuration a command runs with: the file (``--config``) and the environment
    (:func:`load_config`), then the options of the command line that every command takes:
    ``--plugins-dir`` (relative to the current folder), ``--trace-hooks``, ``--trace-sample``.
    """
    config = load_config(getattr(args, "config", None))
    folder = getattr(args, "plugins_dir", None)
    if folder is not None:
        config = config.with_(plugins_dir=plugins_folder(folder, "--plugins-dir"))
    if getattr(args, "trace_hooks", False):
        config = config.with_(trace_hooks=True)
    sample = getattr(args, "trace_sample", None)
    if sample is not None:
        config = config.with_(trace_sample=sample)
    return config
