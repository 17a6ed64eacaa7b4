"""Make the replay server importable by the connector tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
