"""Pure decision logic: the breakout state machine and the stage schedule.

Nothing here does I/O, reads a clock or holds globals: the same bars and parameters always give
the same answer, which is what keeps backtests honest and tests fast.
"""
