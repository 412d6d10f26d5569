"""One exception type for mistakes a user can fix; the CLIs print it as a single line."""


class UserError(Exception):
    """Bad input (config value, file, combination): the message says what to change."""
