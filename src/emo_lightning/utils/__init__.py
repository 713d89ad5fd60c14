"""What every layer shares and that knows nothing of emotions: one-line config errors and checks, atomic writes,
the console, the hardware, Hub paths and what may run code.

Imports no other emo_lightning package.
"""
