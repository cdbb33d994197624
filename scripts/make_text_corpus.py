#!/usr/bin/env python
"""Write the built-in text corpus, ``plugins/corpus/kjv.txt.gz``: the King James Bible, one verse per line.

The text comes from Debian's ``bible-kjv`` package (``apt-get install bible-kjv``; its data file is the KJV text,
public domain, see ``plugins/corpus/LICENSE``). Verse references (``Ge1:1``) are removed; the text is ASCII.
The gzip file is written with a fixed mtime, so the same input gives the same bytes.

Usage::

    python scripts/make_text_corpus.py                 # needs the `bible` command
    python scripts/make_text_corpus.py --from dump.txt # from `bible -f Gen1:1-Rev22:21 > dump.txt`
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "plugins" / "corpus" / "kjv.txt.gz"
VERSE = re.compile(r"^\S+?\d+:\d+ (.*)$")


def verses(dump: str) -> list[str]:
    """The verses of ``bible -f`` output, without their references."""
    found = []
    for line in dump.splitlines():
        match = VERSE.match(line)
        if match:
            found.append(match.group(1).strip())
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a saved `bible -f Gen1:1-Rev22:21` dump")
    args = parser.parse_args(argv)
    if args.source:
        dump = args.source.read_text(encoding="ascii")
    else:
        dump = subprocess.run(
            ["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True, env={"COLUMNS": "100000"}
        ).stdout
    text = "\n".join(verses(dump)) + "\n"
    data = text.encode("ascii")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("wb") as raw, gzip.GzipFile("kjv.txt", "wb", compresslevel=9, fileobj=raw, mtime=0) as packed:
        packed.write(data)
    print(f"{OUT}: {len(text.splitlines())} verses, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
