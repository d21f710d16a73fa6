"""A small fence agent of the standard protocol, for the tests: key=value lines on stdin.

It keeps a host's power in ``<ip>/power`` (on|off) and behaves as ``<ip>/mode`` says:
normal, off_fails (off exits 1), hang (off never returns, with a child process),
liar (off exits 0 but the power stays on). Every call is appended to ``<ip>/calls``
as ``action argv-length``; the password must be ``s3cret``.
"""

import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    opts = dict(line.split("=", 1) for line in sys.stdin.read().splitlines() if "=" in line)
    home = Path(opts["ip"])
    action = opts.get("action", "")
    with (home / "calls").open("a") as log:
        log.write(f"{action} {len(sys.argv)} {' '.join(sys.argv[1:])}\n")
    if opts.get("password") != "s3cret":
        print(
            f"login failed for {opts.get('username')} with {opts.get('password')}", file=sys.stderr
        )
        return 1
    power = home / "power"
    mode = (home / "mode").read_text().strip()
    if action == "status":
        return 0 if power.read_text().strip() == "on" else 2
    if action == "off":
        if mode == "off_fails":
            print("IPMI: power off refused", file=sys.stderr)
            return 1
        if mode == "hang":
            child = subprocess.Popen(["sleep", "600"])
            (home / "pids").write_text(f"{child.pid}\n")
            time.sleep(600)
        if mode != "liar":
            power.write_text("off")
        return 0
    print(f"unknown action {action}", file=sys.stderr)
    return 1


sys.exit(main())
