"""The data layer: NYSE sessions, the canonical bar schema, the Parquet cache, the providers
and :func:`barlab.data.panel.load_bars`, which turns them into aligned :class:`~barlab.bars.Bars`.

Importing this package loads nothing heavy; each module imports what it needs.
"""
