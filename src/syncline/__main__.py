"""`python -m syncline` runs the command line."""

from syncline.cli.app import main

main()
