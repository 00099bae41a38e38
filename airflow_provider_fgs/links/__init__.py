"""Links for Huawei Cloud FunctionGraph."""
