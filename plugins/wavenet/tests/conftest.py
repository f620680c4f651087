"""The wavenet tests share one tiny architecture and its random models (wavenet_tiny.py, next to this file)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib leaves the tests' folder off sys.path
