"""``[settings.monitoring]``: where the figures go and which thresholds raise alerts.

hookline checks this table when the plugin loads (a typo or a bad value stops ``hookline run``
before it reads anything), and the plugin reads it from the run's configuration when a run
starts. Every threshold is off until it is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hookline
from hookline import fields
from hookline.errors import ConfigError, ValidationError

#: The plugin's name, as its entry point declares it: the table is ``[settings.monitoring]``.
NAME = "monitoring"


class Settings(hookline.Settings):
    """The plugin's settings (the README's settings reference lists them with examples)."""

    prometheus_port = fields.Integer(
        minimum=0, maximum=65535, optional=True,
        description="Serve /metrics on this port while a run lasts (0: any free port).")
    prometheus_host = fields.String(
        min_length=1, default="127.0.0.1",
        description="The address /metrics listens on (0.0.0.0: every interface).")
    tracing = fields.Boolean(
        default=True,
        description="Send spans when opentelemetry-sdk is installed (false: never).")
    max_dead_letter_ratio = fields.Number(
        minimum=0, maximum=1, optional=True,
        description="Alert when more than this share of a batch's events is dead-lettered.")
    max_stage_error_rate = fields.Number(
        minimum=0, maximum=1, optional=True,
        description="Alert when a stage raises on more than this share of its calls in a batch.")
    max_stage_p99_ms = fields.Number(
        minimum=0, exclusive_minimum=True, optional=True,
        description="Alert when a stage's p99 latency in a batch is over this many ms.")
    stage_max_error_rate = fields.Mapping(
        keys=fields.String(min_length=1), values=fields.Number(minimum=0, maximum=1),
        default=dict, description="Per stage name, a max_stage_error_rate of its own.")
    stage_max_p99_ms = fields.Mapping(
        keys=fields.String(min_length=1),
        values=fields.Number(minimum=0, exclusive_minimum=True),
        default=dict, description="Per stage name, a max_stage_p99_ms of its own.")
    min_events_per_s = fields.Number(
        minimum=0, exclusive_minimum=True, optional=True,
        description="Alert when a batch goes through at fewer events per second than this.")
    fail_on_alert = fields.Boolean(
        default=False,
        description="End the run after committing the batch an alert fired on (exit 7).")


def settings_of(config: Mapping[str, Any]) -> Settings:
    """The settings in a run's configuration (``run.config``), checked.

    hookline has checked the table of the configuration the pipeline was built from; a run
    given another configuration is checked here, with the same message.
    """
    table = config.get("plugin_settings", {}).get(NAME, {})
    try:
        return Settings.from_dict(dict(table))
    except ValidationError as exc:
        raise ConfigError(f"[settings.{NAME}]: {exc}") from None
