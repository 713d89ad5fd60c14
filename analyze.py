"""Look at a dataset, or at what a frozen encoder makes of it: `python analyze.py task=explore data=go_emotions`.

The command: `emo_lightning.commands.analyze` (installed: `emo-analyze`); `--help` shows its page.
"""

from emo_lightning.commands.analyze import run

if __name__ == "__main__":
    run()
