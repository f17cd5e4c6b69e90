#!/usr/bin/env python3
"""Print the Python source held in a C string literal: `static const char NAME[] = "..." ...;`.

Usage: py_from_c_literal.py FILE.c NAME

Written for moving the Python that src/py/*.c carried as string literals into
src/py/lib/*.py (a branch that still edits a literal can be ported with it: decode its
version of the literal and diff it against the .py file). Handles the escapes those
literals use: \\n \\t \\\\ \\" \\' \\xHH and octal.
"""
import re
import sys

ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def decode(body):
    out, i = [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
            out.append(chr(int(m.group(0), 16)))
            i += 2 + len(m.group(0))
        elif n in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(chr(int(m.group(0), 8)))
            i += 1 + len(m.group(0))
        else:
            out.append(ESC[n])
            i += 2
    return "".join(out)


def main(path, name):
    text = open(path).read()
    start = text.index("static const char %s[] =" % name)
    end = text.index('";\n', start) + 2
    pieces = re.findall(r'"((?:[^"\\]|\\.)*)"', text[text.index("=", start):end])
    sys.stdout.write("".join(decode(p) for p in pieces))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
