"""``python -m gristmill`` runs the CLI."""

from gristmill.cli.app import main

main()
