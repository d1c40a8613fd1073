"""Helpers the test tiers share, imported as `tests.support.<module>` (no sys.path edits)."""
