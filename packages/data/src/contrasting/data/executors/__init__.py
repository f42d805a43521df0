"""Executors of recipes: the shared epoch logic (``view_loader``), ``make_loader`` and the torchvision executor
(``loader``, ``torchvision_backend``), the DALI executor (``dali_backend``) and worker processes (``workers``)."""
