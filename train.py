"""Fine-tune an encoder on an emotion dataset: `python train.py model=squeezebert data=go_emotions`.

The command: `emo_lightning.commands.train` (installed: `emo-train`); `--help` shows its page.
"""

from emo_lightning.commands.train import run

if __name__ == "__main__":
    run()
