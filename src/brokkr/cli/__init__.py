"""The `brokkr` command line. Broker entry points live here too (serve, db, admin)."""
