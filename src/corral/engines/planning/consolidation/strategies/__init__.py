"""Consolidation strategies, one per file (Watcher-style), registered in :mod:`.registry`."""
