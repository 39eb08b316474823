"""HTTP: one Router module per resource, thin handlers that call one service each (D1, D2)."""
