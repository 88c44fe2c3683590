"""Every figure a run or an analysis draws, and the report that shows them.

One module per figure: ``density`` (1), ``scaling`` (2), ``doubling`` (3), ``changepoint`` (4),
``diagnostics`` (5a trace, 5b PPC), ``forecast``, ``sweeps`` (tornado, forest); ``run_set``
draws a run's whole set (and redraws any output directory); ``common`` holds what they share;
``report`` writes report.md and report.html.
"""
