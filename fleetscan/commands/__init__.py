"""The command line's sub-commands and shared terminal helpers.

:mod:`fleetscan.cli` holds the top-level ``app`` and ``scan``/``demo``; each
other command (group) lives in a module here and is registered on ``app``
(``app.add_typer`` for a group). Commands parse arguments, call the library
and print — no scanning logic lives here.
"""
