"""Make this folder's test helpers (titan_paths, titan_cpu) importable, as ``python tests/...`` would."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
