"""The analysis of a results table: its contract (``results``), statistics (``stats``), the study's findings as
named claims (``claims``), figures (``plots``), the report (``report``) and ``contrasting report``'s arguments
(``cli``). Imports no torch: reporting on a results file stays light."""
