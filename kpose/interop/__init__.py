"""Interoperability with other frameworks' files."""
