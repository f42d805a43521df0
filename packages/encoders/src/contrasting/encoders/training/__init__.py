"""Training: the loop (``trainer``), batch sources (``data``), optimisers and schedules (``optim``),
precision, loggers and the online k-NN check."""
