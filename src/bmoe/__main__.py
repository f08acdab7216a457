"""``python -m bmoe`` runs the command line."""

from bmoe.cli import main

main()
