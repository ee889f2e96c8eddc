"""One module per screen: label, train, evaluate, runs."""
