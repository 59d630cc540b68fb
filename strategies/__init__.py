"""Example strategies shipped with barlab (discovered by name, see barlab.strategy)."""
