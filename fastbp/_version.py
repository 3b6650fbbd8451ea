"""fastbp's version (one place: the package, model files and pyproject.toml read it)."""
__version__ = "0.2.0.dev0"
