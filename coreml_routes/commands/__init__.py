"""The CLI's subcommands, one module each: ``register(subparsers)`` adds its parser, ``run``
does the work. They parse and report; the work itself lives in the layers below."""
