"""What training/ and service/ share without importing each other: the model card, file helpers, quiet start-up.

Dependency-free but for pydantic; both sides import it, and it imports neither.
"""
