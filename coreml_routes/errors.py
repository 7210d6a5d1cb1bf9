class UserError(Exception):
    """Bad input from the user: printed as one ``error:`` line, exit code 2."""
