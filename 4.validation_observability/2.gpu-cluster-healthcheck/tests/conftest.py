"""Make the folder's package and the test helpers (healthcheck_fakes) importable."""

import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
for folder in (TESTS_DIR.parent, TESTS_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
