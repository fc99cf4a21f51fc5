"""A configuration built in code: for embedding hookline, and for tests."""

from hookline.config import Config, load_config

# What `hookline run` does: ./hookline.toml (or [tool.hookline]), then HOOKLINE_* on top.
from_files = load_config()

# The same kind of settings written in code. A Config is immutable: with_() derives one.
in_code = Config(
    plugins=("fraud", "ranking"),
    batch_size=1000,
    plugin_settings={"fraud": {"blocked": ["XTS", "XXX", "XAU"]}},
    flags={"ranking.experimental": 0.25},
)
strict = in_code.with_(strict=True)
