"""Pure rules: PAK format, roles and row access, domain errors. No I/O, no SQL, no HTTP."""
