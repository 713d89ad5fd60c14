"""Predict emotions with a trained run: `python predict.py run_dir=outputs/runs/<run> text="i miss my friends"`.

The command: `emo_lightning.commands.predict` (installed: `emo-predict`); `--help` shows its page.
"""

from emo_lightning.commands.predict import run

if __name__ == "__main__":
    run()
