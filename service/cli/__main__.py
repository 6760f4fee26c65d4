"""``python -m service.cli``: the same as the ``ticket-router`` command."""

from service.cli.main import main

main()
