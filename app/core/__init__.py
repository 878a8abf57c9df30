"""What the app is built on: its settings (config.py) and its PostgreSQL connections (db.py)."""
