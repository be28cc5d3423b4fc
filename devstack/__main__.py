"""python -m devstack up | down | status | verify-down | env | migrate"""

from __future__ import annotations

import sys

from devstack import stack


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "status"
    if cmd == "up":
        stack.up()
    elif cmd == "down":
        stack.down()
    elif cmd == "status":
        states = stack.status()
        for name, ok in states.items():
            print(f"{name:10s} {'up' if ok else 'down'}")
        return 0 if all(states.values()) else 1
    elif cmd == "verify-down":
        left = stack.verify_down()
        if left:
            print(f"[stack] still running after stack-down: {', '.join(left)}", file=sys.stderr)
            return 1
        print("[stack] nothing of the stack is left running")
    elif cmd == "migrate":
        print("\n".join(stack.migrate()) or "up to date")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
