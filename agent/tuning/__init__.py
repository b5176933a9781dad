"""Tuning: parameter sweeps (grid, random, optuna), walk-forward and leave-one-episode-out
evaluation, and sensitivity of the chosen config. Every point is the real backtest.

- `grid`: the grid file, validated into points (each a full Config) before any work;
- `windows`: walk-forward and episode windows;
- `select`: objectives, choosing, ranking, sensitivity, chained out-of-sample curves;
- `results`: `results.csv`, appended as points finish, read back to skip finished points;
- `executors`: where points run (in process, a process pool, dask);
- `worker`: one point's backtest, data loaded once per worker process;
- `sweep`: the orchestration the `spillover sweep` command calls;
- `report`: the tables it prints.
"""
