"""Built-in logger plugins: metrics sinks switched on from a recipe's ``[log]`` table."""
