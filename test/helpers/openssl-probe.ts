/**
 * openssl-probe.ts - one `openssl s_client -starttls smtp` handshake against
 *                    any loopback address, with a chosen TLS version and
 *                    ticket setting, saving or offering a session file.
 * Owns: the s_client argument list, QUIT after the handshake summary, and
 *       reading "New"/"Reused" and the protocol from its output.
 * Not here: the save-then-resume probe of one instance
 *           (postfix-instance.ts opensslResumes, built on this);
 *           Postfix instances themselves.
 * See also: openssl-s_client(1), test/postfix/redis-farm.test.ts
 */

import { spawn } from "node:child_process";

export interface HandshakeOptions {
  /** A loopback address; default 127.0.0.1. */
  host?: string;
  port: number;
  /** Offer this saved session (-sess_in). */
  sessIn?: string;
  /** Save the session here (-sess_out). */
  sessOut?: string;
  /** "1.2" forces TLS 1.2, "1.3" TLS 1.3; default: what both sides agree. */
  tls?: "1.2" | "1.3";
  /** true: no session ticket (-no_ticket), so only the server's session cache can resume. */
  noTicket?: boolean;
  /** Give up (reject) after this long; default 30 s. */
  timeoutMs?: number;
}

export interface HandshakeResult {
  /** s_client printed a line beginning "Reused". */
  reused: boolean;
  /** The protocol of the "New, TLSv1.x, Cipher is ..." line. */
  protocol: string;
  /** s_client's stdout and stderr. */
  output: string;
}

/**
 * opensslHandshake - one STARTTLS handshake; resolves when s_client ends
 * after printing its "New," or "Reused," summary, rejects when there was no
 * handshake. QUIT is sent after the summary; stdin stays open until the
 * server closes, so TLS 1.3 tickets are read before s_client exits.
 */
export function opensslHandshake(o: HandshakeOptions): Promise<HandshakeResult> {
  const args = ["s_client", "-starttls", "smtp", "-connect", `${o.host ?? "127.0.0.1"}:${o.port}`,
    "-servername", "mx.test", "-nocommands"];
  if (o.tls === "1.2") args.push("-tls1_2");
  if (o.tls === "1.3") args.push("-tls1_3");
  if (o.noTicket === true) args.push("-no_ticket");
  if (o.sessIn !== undefined) args.push("-sess_in", o.sessIn);
  if (o.sessOut !== undefined) args.push("-sess_out", o.sessOut);
  const summary = /^(New|Reused), (TLSv[0-9.]+|SSLv3)?/m;
  return new Promise((resolve, reject) => {
    const child = spawn("openssl", args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let quitSent = false;
    const timeoutMs = o.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`openssl ${args.join(" ")}: no end within ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      output += d.toString("latin1");
      if (!quitSent && summary.test(output)) {
        quitSent = true;
        child.stdin.write("QUIT\r\n");
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.stdin.on("error", () => { /* s_client gone first */ });
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("close", (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      const m = summary.exec(output);
      if (m === null) {
        reject(new Error(`openssl ${args.join(" ")}: no TLS handshake (exit ${code}); output:\n${output}`));
        return;
      }
      resolve({ reused: m[1] === "Reused", protocol: m[2] ?? "", output });
    });
  });
}
