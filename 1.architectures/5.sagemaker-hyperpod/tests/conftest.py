"""Import the lifecycle package as `python3 lifecycle.py` does, and provide a fake node to run it on."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
BASE_CONFIG = TESTS.parent / "LifecycleScripts" / "base-config"
for folder in (BASE_CONFIG, TESTS):  # hyperpod_lifecycle, and fake_node for the tests
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
