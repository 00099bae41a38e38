"""Local FunctionGraph + IAM emulator that runs real Python handlers."""
