"""Serve a trained run over HTTP: `python serve.py run_dir=outputs/runs/<run>` → http://127.0.0.1:8000

The command: `emo_lightning.commands.serve` (installed: `emo-serve`); `--help` shows its page.
"""

from emo_lightning.commands.serve import run

if __name__ == "__main__":
    run()
