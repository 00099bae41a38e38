"""Hooks for Huawei Cloud FunctionGraph."""
