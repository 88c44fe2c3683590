"""Sweeps of many fits (benchmark subsets, sensitivity grids, SBC, refits) in this process or
on a Dask cluster: ``runner`` (where the fits run, and the client that writes them),
``programs`` (what a worker runs: one compiled program per family), ``store`` (the sweep
directory, resumable). docs/sweeps.md has the user's side."""
