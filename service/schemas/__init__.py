"""What the service reads and answers, in pydantic models.

- ``inputs``: the served model's inputs (``InputSpec``), read from its validated card
  (``common.card.ServableCard``, docs/contract.md).
- ``request``: the request models, built at load time from those inputs (``ModelSchema``), so a
  model with other fields is served with no code change; pydantic checks the types.
- ``errors``: client errors (``InputError``) and their readable messages.
- ``response``: the answers.
"""
