"""Grids of cells: the spec (``spec``), cell keys, requests and executors (``cells``), the SQLite result store
(``store``), local worker processes (``pool``), Slurm (``cluster``) and ``contrasting grid`` (``cli``). Imports the
catalog; the cell protocol only inside the default executor."""
