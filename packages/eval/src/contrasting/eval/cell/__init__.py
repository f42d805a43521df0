"""One cell of the protocol: a frozen encoder (``encoder``), its cached features (``features``) and
``protocol.run_cell``, which trains and scores a task's head on them. Imports the catalog."""
