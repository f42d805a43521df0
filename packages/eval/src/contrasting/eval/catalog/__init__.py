"""The task catalog: end tasks as data (``tasks``), how their files are read (``readers``, ``world``), what is
trained on them (``heads``, ``objectives``) and how it is scored (``metrics``, ``metric_stats``). Imports nothing
else of contrasting.eval."""
