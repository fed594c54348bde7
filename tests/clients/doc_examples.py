"""The worked examples of docs/task-protocol.md, parsed, and a matcher of recorded Redis commands against them.

An example is a ```redis block: `# env: A=B ...` lines (environment), `# $ CMD` lines (a command to run), the
Redis commands the preceding `# $` line sends (one per line, shell-quoted words), and `# <name> = TEXT` lines
(the envelope bound to <name> in protobuf text format). Other `#` lines are comments.

Placeholders `<name>` and `<name+N>` stand for one value per block: the first occurrence binds it, every later
one must agree (`<now+60000>` binds or checks now = value - 60000).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from google.protobuf import text_format

PLACEHOLDER = re.compile(r"<([a-z][a-z0-9_]*)([+-]\d+)?>")


@dataclass
class Step:
    argv: List[str]                       # the `# $` command line
    commands: List[List[str]] = field(default_factory=list)


@dataclass
class Example:
    line: int                             # where the block starts in the document (for messages)
    env: Dict[str, str] = field(default_factory=dict)
    steps: List[Step] = field(default_factory=list)
    envelopes: List[Tuple[str, str]] = field(default_factory=list)  # (placeholder name, text-format template)

    def title(self) -> str:
        return f"docs/task-protocol.md:{self.line}: " + " ; ".join(" ".join(s.argv) for s in self.steps)


def parse_examples(markdown: str) -> List[Example]:
    examples: List[Example] = []
    current: Optional[Example] = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        if current is None:
            if line.strip() == "```redis":
                current = Example(number)
            continue
        if line.strip() == "```":
            examples.append(current)
            current = None
            continue
        if line.startswith("# env:"):
            for item in line[len("# env:"):].split():
                k, v = item.split("=", 1)
                current.env[k] = v
        elif line.startswith("# $ "):
            current.steps.append(Step(shlex.split(line[len("# $ "):])))
        elif m := re.match(r"# <([a-z][a-z0-9_]*)> = (.*)$", line):
            current.envelopes.append((m.group(1), m.group(2)))
        elif line.startswith("#") or not line.strip():
            continue
        else:
            if not current.steps:
                raise ValueError(f"docs/task-protocol.md:{number}: a command before any '# $' line")
            current.steps[-1].commands.append(shlex.split(line))
    return examples


def _value_pattern(name: str) -> bytes:
    if name.startswith("id"):
        return rb"[0-9a-f]{20}"
    if name in ("now", "shard") or name.startswith("now"):
        return rb"\d+"
    return rb".+"


class Bindings:
    """Placeholder values of one example."""

    def __init__(self) -> None:
        self.values: Dict[str, bytes] = {}

    def match(self, template: bytes, actual: bytes, what: str) -> None:
        """Matches one word (or a whole text) against its template, binding or checking placeholders."""
        parts: List[bytes] = []
        names: List[Tuple[str, int]] = []
        last = 0
        for m in PLACEHOLDER.finditer(template.decode()):
            parts.append(re.escape(template[last:m.start()]))
            name, offset = m.group(1), int(m.group(2) or 0)
            parts.append(b"(" + _value_pattern(name) + b")")
            names.append((name, offset))
            last = m.end()
        parts.append(re.escape(template[last:]))
        m = re.fullmatch(b"".join(parts), actual, re.DOTALL)
        if m is None:
            raise AssertionError(f"{what}: {actual!r} does not match {template.decode()!r}")
        for (name, offset), value in zip(names, m.groups()):
            if offset:
                base = str(int(value) - offset).encode()
            else:
                base = value
            if name in self.values and self.values[name] != base:
                raise AssertionError(f"{what}: <{name}> is {base!r} here but {self.values[name]!r} before")
            self.values[name] = base


def match_commands(expected: List[List[str]], actual: List[List[bytes]], bindings: Bindings, what: str) -> None:
    if len(expected) != len(actual):
        raise AssertionError(f"{what}: expected {len(expected)} commands, Redis received {len(actual)}:\n"
                             + "\n".join(repr(c) for c in actual))
    for i, (want, got) in enumerate(zip(expected, actual)):
        if len(want) != len(got):
            raise AssertionError(f"{what}: command {i + 1} has {len(got)} words, expected {len(want)}: {got!r}")
        # Command names are case-insensitive in Redis; everything else is compared exactly.
        got = [got[0].upper()] + got[1:]
        for template, word in zip(want, got):
            bindings.match(template.encode(), word, f"{what}, command {i + 1}")


def match_envelopes(example: Example, bindings: Bindings, envelope_type: type, what: str) -> None:
    for name, template in example.envelopes:
        if name not in bindings.values:
            raise AssertionError(f"{what}: <{name}> never bound by a command")
        envelope = envelope_type()
        envelope.ParseFromString(bindings.values[name])
        text = " ".join(text_format.MessageToString(envelope, as_one_line=True).split())
        bindings.match(" ".join(template.split()).encode(), text.encode(), f"{what}, <{name}>")
