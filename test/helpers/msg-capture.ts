/**
 * msg-capture.ts - diagnostics (src/log/msg.ts) collected as "level: text"
 *                  lines instead of going to the configured sinks, so that
 *                  tests can assert on them.
 * Owns: the capturing sink, the per-test capture (beforeEach/afterEach of the
 *       suite that calls it) and the around-one-call capture; both put the
 *       previous sinks back.
 * Not here: the real sinks (src/log/*-sink.ts); tests that capture the
 *           output of a child process (they read its stderr).
 * See also: src/log/msg.ts (setMsgSinks, getMsgSinks)
 */

import { afterEach, beforeEach } from "node:test";
import { getMsgSinks, setMsgSinks, type MsgSink } from "../../src/log/msg.js";

/** msgLineSink - a sink that appends "level: text" to lines. */
export function msgLineSink(lines: string[]): MsgSink {
  return { write: (level, text) => lines.push(`${level}: ${text}`) };
}

/**
 * captureMsgsEach - in the calling suite (or file, at top level), each test's
 * diagnostics go to the returned array, emptied before each test; the sinks
 * come back after each test. Empty it mid-test with `lines.length = 0`.
 */
export function captureMsgsEach(): string[] {
  const lines: string[] = [];
  let saved: MsgSink[] = [];
  beforeEach(() => {
    lines.length = 0;
    saved = getMsgSinks();
    setMsgSinks([msgLineSink(lines)]);
  });
  afterEach(() => setMsgSinks(saved));
  return lines;
}

/** captureMsgs - run fn with diagnostics collected as "level: text" lines; its result or what it threw. */
export function captureMsgs<T>(fn: () => T): { result?: T; error?: unknown; lines: string[] } {
  const lines: string[] = [];
  const saved = getMsgSinks();
  setMsgSinks([msgLineSink(lines)]);
  try {
    return { result: fn(), lines };
  } catch (error) {
    return { error, lines };
  } finally {
    setMsgSinks(saved);
  }
}
