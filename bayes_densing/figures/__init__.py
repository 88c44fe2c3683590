"""Every figure a run or an analysis draws, and the report that shows them."""
