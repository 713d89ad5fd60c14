"""A console that shows one line per event: library noise (adverts, known deprecation warnings, lines that repeat
what our own start line says, weight-loading bars) silenced at the source or filtered; never our own warnings."""

from __future__ import annotations

import io
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

# Lines of Lightning that say nothing a user acts on, or repeat our own start line (precision, hardware).
NOISE = re.compile(
    r"litlogger|LitLogger"
    r"|^TPU available: False"
    r"|^GPU available: False, used: False"
    r"|^Loading `train_dataloader` to estimate number of stepping batches"
    r"|^Using (bfloat16|16bit) Automatic Mixed Precision"
    r"|^`weights_only` was not set"
    r"|^Seed set to \d+"
    r"|^Restoring states from the checkpoint path at "  # the final evaluation loads the best checkpoint twice
    r"|^Loaded model weights from the checkpoint at "
    r"|^Restored all states from the checkpoint at .*\.lr_find_"  # tune=lr_find: the finder back at its start
)
# Warnings of the libraries we pin about their own internals, or about a choice we made on purpose (message regexes;
# Lightning issues them from its own frames or the caller's, so they are matched by message only).
KNOWN_WARNINGS = [
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning on torch 2.13's pytree
    r"Precision .* is not supported by the model summary",
    r"The number of training batches \(\d+\) is smaller than the logging interval",  # tiny data: fine
    r".*does not have many workers which may be a bottleneck",  # data.num_workers=null picks it per machine
]
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")

log = logging.getLogger(__name__)


class LibraryNoise(logging.Filter):
    """Drops the records of other libraries' loggers whose message matches `NOISE`; ours always pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("emo_lightning"):
            return True
        return not NOISE.search(record.getMessage())


def quiet_libraries() -> None:
    """One line per event on the console (call after Hydra configured logging, before training starts).

    Lightning's own console handlers go (its records reach Hydra's handlers once, not twice), `LibraryNoise`
    filters every root handler, known library warnings are ignored, and transformers loads weights without a bar.
    """
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    noise = LibraryNoise()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, LibraryNoise) for f in handler.filters):
            handler.addFilter(noise)
    for message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights: 100%" on every from_pretrained


@contextmanager
def no_datasets_bars() -> Iterator[None]:
    """datasets' progress bars off for a moment (a map or a write that takes a blink), then as they were."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    shown = is_progress_bar_enabled()
    disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            enable_progress_bar()


class ChattyModules(logging.Filter):
    """Drops the records below WARNING logged from the modules under `folder` (whatever their loggers' names)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = str(folder.resolve())

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not str(Path(record.pathname).resolve()).startswith(self.folder)


@contextmanager
def quiet_modules(folder: Path) -> Iterator[None]:
    """While inside: the INFO and DEBUG records of the modules under `folder` are dropped at the root handlers
    (their warnings still show), and what is print()ed goes to this module's debug log instead of the console.

    For ONNX Runtime's transformer optimizer, which logs each fusion ("Fused Gelu: 6") on loggers named after its
    modules (`fusion_base`, `onnx_model`, …: it imports them as top-level modules) and prints some of its notes."""
    chatty = ChattyModules(folder)
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(chatty)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(chatty)
        for line in printed.getvalue().splitlines():
            log.debug("%s: %s", folder.name, line)


class HeldConsole(logging.Filter):
    """Holds the console's records back (log files still get them, in order) until `release`: so that a summary
    logged after the setup can still be the first line on the console."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.handlers = [  # consoles (not files) that can still be written to
            h
            for h in logging.getLogger().handlers
            if type(h) is logging.StreamHandler and not getattr(h.stream, "closed", False)
        ]
        for handler in self.handlers:
            handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.records or self.records[-1] is not record:  # one record reaches each console handler
            self.records.append(record)
        return False

    def release(self, first: str | None = None, logger: logging.Logger | None = None) -> None:
        """Stop holding; log `first` (to `logger`), then print what was held, in order."""
        for handler in self.handlers:
            handler.removeFilter(self)
        if first is not None:
            (logger or logging.getLogger(__name__)).info("%s", first)
        held, self.records = self.records, []
        for record in held:
            for handler in self.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)


def command_for(script: str) -> str:
    """How the user runs `script` ("predict.py") here: `emo-predict` when this process is an installed command,
    else `python predict.py` (a clone's root script) — for the commands our messages suggest."""
    import sys
    from pathlib import Path

    if Path(sys.argv[0]).name.startswith("emo-"):
        return "emo-" + script.removesuffix(".py")
    return f"python {script}"
