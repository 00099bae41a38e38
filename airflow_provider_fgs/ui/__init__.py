"""The FunctionGraph view in the Airflow UI: an Airflow plugin with a FastAPI app."""
