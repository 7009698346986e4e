"""orchard's deploy step: what reaches AWS besides the Airflow environment (dags/, plugins/, requirements).

``python -m deploy job-code`` (``make deploy``) uploads the job code that AWS runs from S3 to the keys
``orchard.job_code`` derives from the settings. Images are built from ``include/<name>/Dockerfile``.
"""
