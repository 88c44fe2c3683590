"""The ``bayes-densing`` command line (``app``): one typer command per question."""
