"""The labelling store: items, decisions and history in one SQLite file (``*.labels.sqlite``).

``records`` defines what is stored, ``store`` reads and writes it (``LabelStore``), ``formats``
imports and exports labelled data in the formats the tasks read (``responses``: the conversations
of the ``response`` kind). Standard library only: the TUI edits a store, and the engine trains on
one named as a recipe's data, without either importing the other.
"""
