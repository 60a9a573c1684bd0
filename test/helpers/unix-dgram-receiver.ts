/**
 * unix-dgram-receiver.ts - a real AF_UNIX datagram socket that tests bind, in
 *                          place of syslogd's /dev/log or postlogd's public/postlog.
 * Owns: binding the socket (Node cannot: a small python3 child does it), handing
 *       each datagram to the test byte for byte, cleanup.
 * Not here: the senders (src/log/*-sink.ts).
 * See also: test/unit/log-sinks.test.ts, test/unit/master-link.test.ts
 */

import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { createInterface } from "node:readline";

// Exits when its stdin closes (the test ended or died), so no receiver outlives its test,
// even when python3 is a wrapper (pyenv shim) whose pid is not the interpreter's.
const RECEIVER = `
import base64, os, select, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
sys.stdout.write("ready\\n"); sys.stdout.flush()
while True:
    ready, _, _ = select.select([s, sys.stdin], [], [])
    if sys.stdin in ready and os.read(sys.stdin.fileno(), 4096) == b"":
        break
    if s in ready:
        data = s.recv(1 << 17)
        sys.stdout.write(base64.b64encode(data).decode() + "\\n"); sys.stdout.flush()
try:
    os.unlink(path)
except OSError:
    pass
`;

export interface DgramReceiver {
  path: string;
  /** every datagram so far */
  received: Buffer[];
  /** the next datagram not yet taken by next() */
  next(): Promise<Buffer>;
  close(): void;
}

/** startDgramReceiver - bind path (must not exist) and resolve once it receives */
export async function startDgramReceiver(path: string): Promise<DgramReceiver> {
  const proc: ChildProcess = spawn("python3", ["-c", RECEIVER, path], { stdio: ["pipe", "pipe", "pipe"] });
  const received: Buffer[] = [];
  let taken = 0;
  const waiters: Array<() => void> = [];
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: proc.stdout! });
  await new Promise<void>((resolve, reject) => {
    proc.once("error", (err) => reject(new Error(`cannot start python3 for a datagram receiver: ${err.message}`)));
    proc.once("exit", (code) => reject(new Error(`datagram receiver exited ${code}: ${stderr}`)));
    lines.once("line", (line) => (line === "ready" ? resolve() : reject(new Error(`receiver said ${line}`))));
  });
  proc.removeAllListeners("exit");
  lines.on("line", (line) => {
    received.push(Buffer.from(line, "base64"));
    for (const w of waiters.splice(0)) w();
  });
  return {
    path,
    received,
    next() {
      return new Promise<Buffer>((resolve) => {
        const check = (): void => {
          if (taken < received.length) resolve(received[taken++]);
          else waiters.push(check);
        };
        check();
      });
    },
    close() {
      proc.stdin!.end();
      proc.kill("SIGTERM");
      rmSync(path, { force: true });
    },
  };
}
