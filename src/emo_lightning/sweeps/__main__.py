"""`python -m emo_lightning.sweeps <sweep dirs…> [--out DIR]`: the summary of finished or interrupted sweeps."""

from emo_lightning.sweeps.summary import main

main()
