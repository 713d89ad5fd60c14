"""`--help` pages written for people: what a script does, its config groups with every option and the default
marked, its own settings with their defaults, the common commands, where outputs go. Built from conf/ itself, so a
new option shows up without editing a page; each script lists only the groups its own config reads."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

HIDDEN_GROUPS = ("hydra",)  # Hydra's own settings: `--hydra-help` lists them
SETTING_LINE = re.compile(r"^(?P<key>[A-Za-z_]\w*):(?P<value>[^#]*?)\s*(#\s*(?P<comment>.*))?$")
HELP_FLAGS = ("--help", "-h")


@dataclass
class HelpPage:
    script: str  # e.g. "train.py"
    config_name: str  # conf/<config_name>.yaml
    summary: str
    examples: list[tuple[str, str]]  # (command, what it does)
    sections: dict[str, list[str]] = field(default_factory=dict)  # extra titled sections, lines as given


def config_defaults(conf_dir: Path, config_name: str) -> dict[str, str | None]:
    """The primary config's defaults list as group → default option (None: off unless chosen), in its order."""
    primary = OmegaConf.load(conf_dir / f"{config_name}.yaml")
    chosen: dict[str, str | None] = {}
    for entry in primary.get("defaults", ListConfig([])):
        if isinstance(entry, DictConfig):
            for key, value in entry.items():
                group = str(key).removeprefix("override ").removeprefix("optional ").strip()
                if group.partition("/")[0] not in HIDDEN_GROUPS:
                    chosen[group] = None if value is None else str(value)
    return chosen


def group_options(conf_dir: Path, group: str) -> list[str]:
    return sorted(path.stem for path in (conf_dir / group).glob("*.yaml"))


def settings(config_file: Path) -> list[tuple[str, str, str]]:
    """Top-level settings of a config file: (key, default as written, its comment: inline, or the comment block
    right above it, usage lines `# python …` left out)."""
    found, above, section = [], [], None
    for line in config_file.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("# ").strip()
            above = [] if text.startswith("python ") else [*above, text]
            continue
        nested = line.startswith("  ") and not line.startswith("   ") and section is not None
        match = SETTING_LINE.match(line[2:] if nested else line)
        if match and match["key"] not in ("defaults", "hydra", "_target_"):
            key, value = match["key"], match["value"].strip()
            if not nested:
                section = key if not value else None  # a section: its keys follow, indented
            if value:  # a section's own line says nothing its keys do not
                found.append((f"{section}.{key}" if nested else key, value, (match["comment"] or " ".join(above))))
        elif line.strip() and not line.startswith(" "):
            section = None
        if line.strip():
            above = []
    return [(key, value, comment.strip()) for key, value, comment in found]


def setting_lines(rows: list[tuple[str, str, str]], prefix: str = "", width: int = 118) -> list[str]:
    """`key  default  comment` rows, the comments wrapped under their column."""
    import textwrap

    key_width = max((len(prefix + key) for key, _, _ in rows), default=0)
    lines = []
    for key, value, comment in rows:
        head = f"{prefix + key:<{key_width}}  {value:<10}  "
        wrapped = textwrap.wrap(comment, max(width - len(head), 30)) or [""]
        lines.append((head + wrapped[0]).rstrip())
        lines += [" " * len(head) + more for more in wrapped[1:]]
    return lines


def render(page: HelpPage, conf_dir: Path, command: str | None = None) -> str:
    """The page; `command`: the installed command that runs the script (e.g. emo-train), shown in its place."""
    groups = config_defaults(conf_dir, page.config_name)
    invocation = command or f"python {page.script}"
    usage = f"usage: {invocation} {'[group=option ...] ' if groups else ''}[key=value ...]"
    lines = [f"{command or page.script}: {page.summary}", "", usage]
    if groups:
        lines += ["", "Config groups (choose with group=option; * marks the default):"]
        width = max(len(group) for group in groups)
        for group, default in groups.items():
            options = [f"{o}*" if o == default else o for o in group_options(conf_dir, group)]
            if default is None:
                options.append("(none)*")
            lines.append(f"  {group:<{width}}  {', '.join(options)}")
    own = settings(conf_dir / f"{page.config_name}.yaml")
    if own:
        lines += ["", "Settings (key=value; the default shown):", *(f"  {line}" for line in setting_lines(own))]
    lines += ["", "Common commands:"]
    examples = [(line.replace(f"python {page.script}", invocation), what) for line, what in page.examples]
    width = max(len(line) for line, _ in examples)
    lines += [f"  {line:<{width}}  # {what}" for line, what in examples]
    for title, body in page.sections.items():
        lines += ["", f"{title}:", *(f"  {line}" if line else "" for line in body)]
    lines += ["", "Hydra's own options (multirun, tab completion, logging): --hydra-help"]
    return "\n".join(lines) + "\n"


def group_settings_lines(conf_dir: Path, group: str, option: str) -> list[str]:
    """One option's keys as `group.key  default  comment` lines (e.g. the keys of data=files)."""
    return setting_lines(settings(conf_dir / group / f"{option}.yaml"), prefix=f"{group}.")


def exit_with_help_if_asked(page: Callable[[], str], argv: list[str] | None = None) -> None:
    """Print the page and exit 0 when the command line asks for help (--help / -h), before Hydra parses it."""
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in HELP_FLAGS for arg in argv):
        sys.stdout.write(page())
        sys.exit(0)
