"""radar-assets: Dagster-orchestrated weather-radar data assets."""

from radar_assets.settings import quiet_third_party

quiet_third_party()
