"""Every run setting declared once, one file per component (``registry.py`` lists them; docs/configuration.md)."""
