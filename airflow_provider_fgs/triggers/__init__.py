"""Triggers for Huawei Cloud FunctionGraph."""
