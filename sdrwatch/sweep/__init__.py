"""Sweep planning: band presets (``bands``), hops, revisits and intercept probabilities (``plan``),
and the exam schedule (``schedule``)."""
