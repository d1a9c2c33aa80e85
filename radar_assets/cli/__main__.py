from radar_assets.cli import main

main()
