"""orchard's Airflow-side library: settings, AWS names, prices and run reports shared by the DAGs.

A library imported by DAG files, not an Airflow plugin (plugins/.airflowignore keeps the plugin manager out
of it). Modules import nothing heavy at import time: DAG files load them at parse time.
"""
