"""Where the plugin writes: stdout and stderr as rich consoles (colours and live redraws only on a
terminal; as wide as needed elsewhere, so a pipe gets whole lines), and -o json|yaml documents."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import yaml
from rich.console import Console
from rich.text import Text

FORMATS = ("json", "yaml")
PIPE_WIDTH = 400


def console_for(stream: TextIO) -> Console:
    console = Console(file=stream, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(file=stream, highlight=False, width=PIPE_WIDTH, no_color=True)
    return console


@dataclass
class Output:
    out: Console
    err: Console

    @classmethod
    def standard(cls) -> Output:
        return cls(console_for(sys.stdout), console_for(sys.stderr))

    def document(self, data: Any, fmt: str) -> None:
        """A JSON or YAML document on stdout, never coloured or wrapped."""
        text = json.dumps(data, indent=2, sort_keys=False) + "\n" if fmt == "json" else yaml.safe_dump(
            data, sort_keys=False, default_flow_style=False)
        self.out.file.write(text)
        self.out.file.flush()

    def line(self, text: str) -> None:
        self.out.file.write(text + "\n")
        self.out.file.flush()

    def error(self, text: str) -> None:
        self.err.print(Text.assemble(("error: ", "bold red"), text), soft_wrap=True)
