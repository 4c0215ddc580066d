#!/usr/bin/python3
"""The lab AD's password filter: Samba's ``check password script``.

Samba runs this for every password set (admin reset or user change) with the candidate on stdin; a
non-zero exit refuses it. Once a script is configured Samba no longer runs its own complexity check
(seen on Samba 4.17: an all-lowercase password is then accepted), so this script first applies the same
3-of-5 rule as Samba's ``check_password_quality`` and then refuses the banned words, the way a Windows
password filter DLL adds to (never replaces) the domain's complexity rule. Samba reports either refusal
with the same "does not meet the complexity criteria" text.

It runs under the system Python that samba-tool itself needs, and reads its word list from the file
named by its first argument so that the lab fixture stays the single source of the list. Its second argument
names a counter file: while it holds a number above zero, the next password is refused whatever it is and the
number goes down by one (``LabAD.refuse_next_passwords``: a filter refusing a password that meets every
other rule, as a real banned-word or breached-password filter does).
"""

import sys
from pathlib import Path

_ASCII_NONALPHA = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/"


def complex_enough(pw: str) -> bool:
    digits = upper = lower = nonalpha = unicode = 0
    for c in pw:
        if ord(c) < 128:
            if c.isdigit():
                digits += 1
            elif c.isupper():
                upper += 1
            elif c.islower():
                lower += 1
            elif c in _ASCII_NONALPHA:
                nonalpha += 1
        elif c.isupper():
            upper += 1
        elif c.islower():
            lower += 1
        else:
            unicode += 1
    return sum(1 for n in (digits, upper, lower, nonalpha, unicode) if n) >= 3


def _refuse_forced(counter: Path) -> bool:
    try:
        left = int(counter.read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    if left <= 0:
        return False
    counter.write_text(str(left - 1))
    return True


def main() -> int:
    pw = sys.stdin.read()
    words = Path(sys.argv[1]).read_text().split() if len(sys.argv) > 1 else []
    if len(sys.argv) > 2 and _refuse_forced(Path(sys.argv[2])):
        return 1
    if not complex_enough(pw):
        return 1
    low = pw.lower()
    return 1 if any(w.lower() in low for w in words) else 0


if __name__ == "__main__":
    sys.exit(main())
