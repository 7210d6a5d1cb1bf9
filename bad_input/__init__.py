"""The one root of every error that is the user's to fix: an unknown model or route, a file
that is not what it claims, a shape the model does not take, weights that do not fit.

It lives in a leaf package so that every layer (the zoo, the evaluator, the route envs'
workers on Python 3.7, the CLI) raises the same class. The CLI prints ``error: <message>``
on one line and exits with ``EXIT_CODE``; nothing re-wraps it on the way up.
"""

EXIT_CODE = 2


class BadInput(Exception):
    """The request itself is wrong, not the route: one line that names what and where."""
