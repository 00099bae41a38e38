"""Apache Airflow provider for Huawei Cloud FunctionGraph."""

__version__ = "0.2.0"
