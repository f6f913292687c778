#!/usr/bin/env python3
# An --ssh wrapper for the sync tests and benchmarks/sync.sh: runs the real ssh command after '--',
# counts the bytes each way into a JSON file, and with --flip-after N changes one byte of the stream
# to the far end after N bytes (a bad link).
import json, os, subprocess, sys, threading

def main():
    args = sys.argv[1:]
    count, flip = None, None
    while args and args[0] != "--":
        if args[0] == "--count": count = args[1]; args = args[2:]
        elif args[0] == "--flip-after": flip = int(args[1]); args = args[2:]
        else: sys.exit("ssh-wire.py: unknown option " + args[0])
    cmd = args[1:]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    sent, received = [0], [0]

    def up():
        flipped = False
        while True:
            b = os.read(0, 65536)
            if not b: break
            if flip is not None and not flipped and sent[0] + len(b) > flip:
                i = flip - sent[0]
                b = b[:i] + bytes([b[i] ^ 0x40]) + b[i + 1:]
                flipped = True
            sent[0] += len(b)
            try: child.stdin.write(b)
            except BrokenPipeError: break
        try: child.stdin.close()
        except BrokenPipeError: pass

    t = threading.Thread(target=up, daemon=True)
    t.start()
    while True:
        b = child.stdout.read(65536)
        if not b: break
        received[0] += len(b)
        try: os.write(1, b)
        except BrokenPipeError: break
    status = child.wait()
    if count:
        with open(count, "w") as f: json.dump({"sent": sent[0], "received": received[0]}, f)
    sys.exit(status)

main()
