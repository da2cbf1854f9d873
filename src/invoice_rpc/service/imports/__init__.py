"""Imports: every Upsert rpc as one generic mechanism (`upsert.py`) plus one small module per
entity that says how an item is checked and what columns it becomes."""
