"""Market data adapters: replayed CSV files, the seeded sample generator (Alpaca later)."""
