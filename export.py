"""Export a trained run to ONNX: `python export.py run_dir=outputs/runs/<run> format=onnx|onnx-int8`.

The command: `emo_lightning.commands.export` (installed: `emo-export`); `--help` shows its page.
"""

from emo_lightning.commands.export import run

if __name__ == "__main__":
    run()
