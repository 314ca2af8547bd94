"""pytest plugin (entry point ``pytest11``): hypothesis profiles and backend fixtures.

``--hypothesis-profile=ci`` (the default under ``CI=true``) is bounded and derandomized;
``--hypothesis-profile=thorough`` runs many more examples for nightly-style runs. The
fixtures of :mod:`lash.testing.backends` (``lash_backend_config``: every backend) come with it.
"""

from __future__ import annotations

import os

pytest_plugins = ["lash.testing.backends"]

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # hypothesis is a test extra; without it there are no profiles to set
    settings = None

if settings is not None:
    settings.register_profile(
        "ci", max_examples=50, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile("dev", max_examples=50, deadline=None)
    settings.register_profile(
        "thorough", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.load_profile("ci" if os.environ.get("CI") else "dev")
