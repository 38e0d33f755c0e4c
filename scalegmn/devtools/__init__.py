"""Checks of the package's own shape, run by the test suite (``python -m scalegmn.devtools.imports``)."""
