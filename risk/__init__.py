"""Risk: the gate between stage targets and orders, and the decision journal."""
