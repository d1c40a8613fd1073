"""HTTP prediction service over the exported price SavedModel (see docs/contract.md)."""
