"""Authentication: PAK header → identity, with a short-lived cache that revocations clear at
once locally and within a second on every other broker (D3, D6, D7). Framework-agnostic."""
