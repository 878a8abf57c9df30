"""The HTTP side: the routes (routes/) and what they get from the app (deps.py)."""
