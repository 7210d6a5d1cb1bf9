from bad_input import BadInput


class UserError(BadInput):
    """A mistake found by the CLI's own argument checks (the other layers raise their own
    BadInput subclasses, which the CLI reports the same way)."""
