"""The live radar feed: wire format, listener, spool, simulator and the tables of ``live_echoes``.

No Dagster import here (``radar_assets.defs.echoes`` wires these functions to partitions and sensors).
"""
