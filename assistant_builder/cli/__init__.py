"""The ``builder`` command line. One module per subcommand; ``main.py`` dispatches."""
