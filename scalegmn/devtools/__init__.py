"""Checks of the package's own shape, run by the test suite.

- :mod:`~scalegmn.devtools.imports`: no import cycle, no upward import between the stages, no
  package import hidden in a function (``python -m scalegmn.devtools.imports``).
"""

__all__ = ["imports"]
