"""Tests of the synthetic NEXRAD generator (radar_assets.lib.synth)."""
