"""The ``qa`` task plugin: extractive question answering (in progress)."""
