/**
 * The two commands that move many artifact files in or out of a sandbox in one go, so a job of
 * 10,000 files costs a few sandbox calls, not one per file (an invocation has 1,000 operations).
 * They run under python3, which the container image has (container/Dockerfile uses the
 * "-python" variant) and the local host shares from /usr: one process, each file opened once,
 * with what it says about each file true of the bytes it copied.
 */
import { shellQuote } from "../sandbox/shell";

/**
 * Reads a NUL-separated list of paths and writes their bytes one after another to the pack.
 * Prints one line per listed file: `size mode` for a file in the pack, `- reason` for one left out.
 * A file is opened without following a symlink, and is copied at the size it had when opened
 * (one that shrank meanwhile is taken back out of the pack).
 */
const PACK_SCRIPT = `
import os, stat, sys
names = open(sys.argv[1], "rb").read().split(b"\\0")[:-1]
out = sys.stdout
with open(sys.argv[2], "wb") as pack:
    for name in names:
        start = pack.tell()
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            out.write("- %s\\n" % error.strerror)
            continue
        with os.fdopen(fd, "rb", buffering=0) as source:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                out.write("- not a regular file\\n")
                continue
            left = info.st_size
            while left > 0:
                chunk = source.read(min(left, 1 << 20))
                if not chunk:
                    break
                pack.write(chunk)
                left -= len(chunk)
            if left > 0:
                pack.seek(start)
                pack.truncate()
                out.write("- it shrank while it was collected\\n")
                continue
            out.write("%d %d\\n" % (info.st_size, info.st_mode & 0o777))
`;

/**
 * Reads a JSON manifest of `[size, mode, target]` and cuts the pack into those files in order,
 * making their directories; a target that is a symlink is refused rather than followed.
 */
const UNPACK_SCRIPT = `
import json, os, sys
with open(sys.argv[1], encoding="utf-8") as manifest:
    entries = json.load(manifest)
with open(sys.argv[2], "rb") as pack:
    for size, mode, target in entries:
        os.makedirs(os.path.dirname(target) or "/", exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            left = size
            while left > 0:
                chunk = pack.read(min(left, 1 << 20))
                if not chunk:
                    sys.exit("the pack is shorter than its manifest says")
                out.write(chunk)
                left -= len(chunk)
            os.fchmod(out.fileno(), mode)
`;

/** Packs the files listed in `listPath` into `packPath`; both are removed if packing fails. */
export function packCommand(listPath: string, packPath: string): string {
  return `python3 -c ${shellQuote(PACK_SCRIPT)} ${shellQuote(listPath)} ${shellQuote(packPath)}; status=$?; rm -f -- ${shellQuote(listPath)}; [ $status = 0 ] || rm -f -- ${shellQuote(packPath)}; exit $status`;
}

/** Unpacks `packPath` as `manifestPath` says; both are removed whatever the outcome. */
export function unpackCommand(manifestPath: string, packPath: string): string {
  return `python3 -c ${shellQuote(UNPACK_SCRIPT)} ${shellQuote(manifestPath)} ${shellQuote(packPath)}; status=$?; rm -f -- ${shellQuote(manifestPath)} ${shellQuote(packPath)}; exit $status`;
}
