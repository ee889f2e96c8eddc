"""The terminal UI (``builder tui``): label -> train -> evaluate -> fix, in one Textual app.

Only ``app.py``, ``messages.py``, ``screens/`` and ``widgets/`` import textual. The project/run
readers, model-in-the-loop and training bridge are plain Python, usable (and tested) without a
terminal; the labelling store and its file formats live in ``assistant_builder.labelling``.
"""
