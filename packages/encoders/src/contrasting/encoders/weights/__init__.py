"""Weights on disk: resumable checkpoints (``checkpoints``), published checkpoint layouts (import/export,
``layouts``) and run directories (``runs``)."""
