"""Research on top of the engine: walk-forward analysis, optimisation (scipy), look-ahead check."""
