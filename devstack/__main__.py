"""python -m devstack up | down | status | is-up | verify-down | migrate | put FILE s3://BUCKET/KEY | send FILE QUEUE

``send`` puts each line of FILE (a ``.jsonl``) or the whole FILE on the named local SQS queue."""

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
        # exit 0 whenever the report is true (all up, or all or some cleanly down); 1 only for a
        # state a person must see to: a service that does not answer, or a port held by a stranger
        states = stack.status()
        for name, state in states.items():
            print(f"{name:10s} {state}")
        return 0 if set(states.values()) <= {stack.UP, stack.DOWN} else 1
    elif cmd == "is-up":  # exit 0 only when every service is up (make up: was the stack up before?)
        return 0 if stack.all_up() else 1
    elif cmd == "verify-down":
        left = stack.verify_down()
        if left:
            print(f"[stack] still running after stack-down: {', '.join(left)}", file=sys.stderr)
            return 1
        print("[stack] nothing of the stack is left running")
    elif cmd == "migrate":
        print("\n".join(stack.migrate()) or "up to date")
    elif cmd == "put" and len(argv) == 3 and argv[2].startswith("s3://"):
        from pathlib import Path

        bucket, _, key = argv[2][5:].partition("/")
        key = key + Path(argv[1]).name if key.endswith("/") or not key else key
        stack._aws_client("s3").put_object(Bucket=bucket, Key=key, Body=Path(argv[1]).read_bytes())
        print(f"[stack] put {argv[1]} → s3://{bucket}/{key}")
    elif cmd == "send" and len(argv) == 3:
        from pathlib import Path

        path = Path(argv[1])
        text = path.read_text()
        bodies = [line for line in text.splitlines() if line.strip()] if path.suffix == ".jsonl" else [text]
        sqs = stack._aws_client("sqs")
        url = sqs.get_queue_url(QueueName=argv[2])["QueueUrl"]
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        print(f"[stack] sent {len(bodies)} message(s) → sqs:{argv[2]}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
