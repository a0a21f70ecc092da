"""Make the test case's package importable for its unit tests, as `python ddp.py` would."""

import sys
from pathlib import Path

TEST_CASE_DIR = Path(__file__).resolve().parents[1]
if str(TEST_CASE_DIR) not in sys.path:
    sys.path.insert(0, str(TEST_CASE_DIR))
