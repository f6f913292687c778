#!/usr/bin/env python3
# Writes udocker(1), the man page, from the CLI's own help: `udocker --help` for the synopsis, general
# options and command list, `udocker help CMD` for each command. Run: scripts/gen-man.py UDOCKER >
# docs/udocker.1 (ManPageTests regenerates it and fails when docs/udocker.1 differs).
import re
import subprocess
import sys


def run(binary, *args):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "UDOCKER_NOSYSCONF": "1"}
    extra = ["--allow-root"] if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0" else []
    r = subprocess.run([binary] + extra + list(args), capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"gen-man.py: {binary} {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout.rstrip("\n")


def roff(text):
    """Text for a no-fill block: backslashes doubled, lines starting with . or ' protected."""
    out = []
    for line in text.split("\n"):
        line = line.replace("\\", "\\e")
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-man.py UDOCKER-BINARY")
    binary = sys.argv[1]
    general = run(binary, "--help")
    version = run(binary, "version")
    impl = re.search(r"^implementation: (.*)$", version, re.M)
    compatible = re.search(r"^version: (.*)$", version, re.M)
    commands, in_commands = [], False
    for line in general.split("\n"):
        if line.strip() == "Commands:":
            in_commands = True
            continue
        if in_commands and line.strip() in ("Examples:", "Notes:"):
            break
        m = re.match(r"^  ([a-z][a-z-]*)\b", line) if in_commands else None
        if m and m.group(1) not in commands:
            commands.append(m.group(1))
    page = [
        '.TH UDOCKER 1 "" "%s" "User Commands"' % (impl.group(1) if impl else "udocker"),
        ".SH NAME",
        "udocker \\- run containers without root: pull, create and run Docker/OCI images with PRoot, Fakechroot, runc/crun or Apptainer",
        ".SH SYNOPSIS",
        ".B udocker",
        "[general_options] command [command_options] command_args",
        ".SH DESCRIPTION",
        "This udocker speaks the command line of udocker %s: the same commands, options,"
        % (compatible.group(1) if compatible else "1.3"),
        ".B UDOCKER_*",
        "variables and",
        ".BR udocker.conf .",
        "Images are kept once in a content-addressed store shared across repositories.",
        "The text below is the program's own help:",
        ".B udocker \\-\\-help",
        "and",
        ".BR \"udocker help\" \" command\".",
        ".PP",
        ".nf",
        roff(general.strip("\n")),
        ".fi",
        ".SH COMMANDS",
    ]
    for c in commands:
        page += [".SS %s" % c, ".nf", roff(run(binary, "help", c)), ".fi"]
    page += [
        ".SH ENVIRONMENT",
        ".TP",
        ".B UDOCKER_DIR",
        "the repository (default",
        ".IR $HOME/.udocker ).",
        ".TP",
        ".B UDOCKER_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE",
        "CA certificates for https registries (default: where the distribution keeps them).",
        ".SH FILES",
        ".TP",
        ".I $HOME/.udocker/udocker.conf",
        "configuration of the repository (also",
        ".I /etc/udocker.conf",
        "and",
        ".IR $HOME/.config/udocker/udocker.conf ).",
        ".SH SEE ALSO",
        "The user manual, docs/manual.md, in the source and the release.",
    ]
    print("\n".join(page))


main()
