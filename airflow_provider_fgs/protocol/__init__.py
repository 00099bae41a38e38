"""The FunctionGraph wire contract, free of I/O: shared by the sync and async transports and the emulator."""
