"""orchard in the Airflow UI: the Reports app, the "Run report" link and run notes (plugins/orchard_ui.py)."""
