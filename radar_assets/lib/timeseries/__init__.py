"""Zonal time series: per-scan summaries over registered boundaries and the transforms served on them."""
