"""One module per API resource: typed methods returning the shared wire Structs."""
