"""The FunctionGraph client the hooks wrap: credentials, tokens, retries, cool-downs, transports."""
