"""Example counts of the property-based tests: few in CI (seconds per test), many in the mutation run.

``$RES2SCOPE_HYPOTHESIS`` picks the profile: ``ci`` (default), ``mutation`` (scripts/mutation) or ``thorough``.
Every profile is derandomized (the same examples on every run, so a test never flakes between runs) and keeps no
example database.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"derandomize": True, "database": None, "deadline": None,
           "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=25, **_COMMON)
settings.register_profile("mutation", max_examples=60, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("RES2SCOPE_HYPOTHESIS", "ci"))
