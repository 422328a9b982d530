"""The package version, defined in this one place; CHANGELOG.md says how it moves."""

__version__ = "1.1.0"
