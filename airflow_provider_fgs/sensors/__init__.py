"""Sensors for Huawei Cloud FunctionGraph."""
