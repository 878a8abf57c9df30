"""One module per resource, each with its ``router``; main.py includes them."""
