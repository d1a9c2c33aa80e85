"""radar-assets: Dagster-orchestrated weather-radar data assets."""

import os

# Py-ART prints a citation banner on import; it would interleave with CLI output and logs.
os.environ.setdefault("PYART_QUIET", "1")
