"""The version of hookline and of the plugin API it offers."""

from __future__ import annotations

__version__ = "0.3.0"

#: Major version of the plugin API. A plugin declaring ``HOOKLINE_API = N`` with
#: a different N is refused at load with a message saying which side to upgrade.
API_VERSION = 1
