"""Venue adapters: the in-process paper venue (ccxt testnets later)."""
