"""The root of the errors FMN Studio expects and explains (bad input, missing tools).

Anything raised as an ``FmnError`` carries a message meant for the user; the CLI prints it as
one line and the app shows it in the window. Anything else is a bug.
"""


class FmnError(Exception):
    """An expected failure whose message says what went wrong and what to do."""
