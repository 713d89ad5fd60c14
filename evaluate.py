"""Score a trained run on any labelled data: `python evaluate.py run_dir=outputs/runs/<run> data=go_emotions`.

The command: `emo_lightning.commands.evaluate` (installed: `emo-evaluate`); `--help` shows its page.
"""

from emo_lightning.commands.evaluate import run

if __name__ == "__main__":
    run()
