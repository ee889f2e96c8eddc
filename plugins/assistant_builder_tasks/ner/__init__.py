"""The ``ner`` task plugin: named-entity recognition / slot filling (in progress)."""
