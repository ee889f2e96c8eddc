"""Built-in task plugins of assistant-builder (registered through the ``assistant_builder`` entry points)."""
