"""Geometry: the boundaries registry and exact zonal statistics on rendered sweep grids."""
