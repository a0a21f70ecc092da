"""Make ``src/`` importable for the unit tests, as ``python src/train.py`` would."""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
