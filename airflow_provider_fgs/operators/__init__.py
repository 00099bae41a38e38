"""Operators for Huawei Cloud FunctionGraph."""
