"""The commands: `emo-train`, `emo-predict`, `emo-evaluate`, `emo-analyze`, `emo-export`, `emo-serve` once the
package is installed, and `python train.py` … in a clone (the root scripts call these). Each composes the package's
own conf/, so it runs from any folder and writes its outputs under the current one."""
