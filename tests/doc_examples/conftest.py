"""The documentation's examples are run by tests/test_docs.py, not collected on their own.

``plugin/`` is a whole plugin distribution (the one the plugin author guide builds); its tests
import ``hookline_review``, which is only importable once the test puts ``plugin/src`` on the
path or installs it, so pytest must not collect them directly.
"""

collect_ignore_glob = ["plugin/*"]
