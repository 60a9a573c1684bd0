/**
 * wire.test.ts - the load generator's own attr0 requests and reply
 * scanner, checked against the project's codec (an independent reader).
 * See also: bench/wire.ts, src/protocol/attr0.ts
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Attr0Decoder, attr0Encode } from "../../src/protocol/attr0.js";
import {
  deleteRequest, lookupRequest, policyRequest, replyAttr, replyEnd, replySessionTag, replyStatus, seedRequest,
  SESSION_TAG_MARK, STATUS_UNREADABLE, tktkeyRequest, updateRequest,
} from "../wire.js";

function decode(text: string): Array<[string, string]> {
  const d = new Attr0Decoder();
  d.push(Buffer.from(text, "latin1"));
  const e = d.next();
  assert.ok(e !== undefined && e.kind === "list");
  assert.equal(d.next(), undefined);
  return e.kind === "list" ? e.attrs.map((a) => [a.name, a.value.toString("latin1")]) : [];
}

test("requests are the attribute lists Postfix's tls_mgr.c sends", () => {
  const s = Buffer.alloc(1500, 9).toString("base64");
  assert.deepEqual(decode(lookupRequest("smtp", "smtp&[a]:25&b&c&&D")),
    [["request", "lookup"], ["cache_type", "smtp"], ["cache_id", "smtp&[a]:25&b&c&&D"]]);
  assert.deepEqual(decode(updateRequest("smtpd", "AB", s)),
    [["request", "update"], ["cache_type", "smtpd"], ["cache_id", "AB"], ["session", s]]);
  assert.deepEqual(decode(deleteRequest("smtpd", "AB")),
    [["request", "delete"], ["cache_type", "smtpd"], ["cache_id", "AB"]]);
  assert.deepEqual(decode(tktkeyRequest("")), [["request", "tktkey"], ["keyname", ""]]);
  assert.deepEqual(decode(seedRequest(32)), [["request", "seed"], ["size", "32"]]);
  assert.deepEqual(decode(policyRequest("smtpd")), [["request", "policy"], ["cache_type", "smtpd"]]);
});

test("replyEnd finds the end of a list, at every cut of a stream of replies", () => {
  const replies = [
    attr0Encode([["status", 0], ["session", Buffer.alloc(3000, 1)]]),
    attr0Encode([["status", -1], ["session", Buffer.alloc(0)]]),
    attr0Encode([["status", 0]]),
    attr0Encode([["status", 0], ["keybuf", Buffer.alloc(88, 2)]]),
  ];
  const all = Buffer.from(replies.join(""), "latin1");
  const ends: number[] = [];
  let at = 0;
  for (const r of replies) ends.push((at += r.length));
  let from = 0;
  for (const end of ends) {
    assert.equal(replyEnd(all, from), end);
    for (let cut = from; cut < end; cut++) assert.equal(replyEnd(all, from, cut), -1, `cut at ${cut}`);
    from = end;
  }
  assert.equal(replyEnd(all, all.length), -1);
});

test("replyStatus reads 0, Postfix's unsigned -1 and -2, and the signed forms", () => {
  const st = (s: string) => replyStatus(Buffer.from(s, "latin1"), 0);
  assert.equal(st("status\x000\0\0"), 0);
  assert.equal(st("status\x004294967295\0session\0\0\0"), -1);
  assert.equal(st("status\x004294967294\0\0"), -2);
  assert.equal(st("status\0-1\0\0"), -1);
  assert.equal(st(attr0Encode([["status", -2]])), -2);
  assert.equal(replyStatus(Buffer.from("xxstatus\x000\0\0", "latin1"), 2), 0);
});

test("replyStatus rejects replies without a readable leading status", () => {
  const st = (s: string) => replyStatus(Buffer.from(s, "latin1"), 0);
  assert.equal(st("session\0\0status\x000\0\0"), STATUS_UNREADABLE);
  assert.equal(st("status\0\0\0"), STATUS_UNREADABLE);
  assert.equal(st("status\x001x\0\0"), STATUS_UNREADABLE);
  assert.equal(st("status\x0099999999999\0\0"), STATUS_UNREADABLE);
  assert.equal(st("statu\0\0"), STATUS_UNREADABLE);
  assert.equal(st("status\x0012"), STATUS_UNREADABLE);
});

test("replyAttr finds a named value", () => {
  const b = Buffer.from(attr0Encode([["status", 0], ["keybuf", Buffer.from("abc")]]), "latin1");
  assert.equal(replyAttr(b, 0, "keybuf"), Buffer.from("abc").toString("base64"));
  assert.equal(replyAttr(b, 0, "status"), "0");
  assert.equal(replyAttr(b, 0, "seed"), undefined);
});

test("replySessionTag reads the writer host from a lookup reply's session, -1 when untagged or absent", () => {
  const reply = (session: Buffer, status = 0) => Buffer.from(attr0Encode([["status", status], ["session", session]]), "latin1");
  for (const tag of [0, 1, 7, 200, 255]) {
    const session = Buffer.concat([Buffer.from([SESSION_TAG_MARK, tag]), Buffer.alloc(50, 0xee)]);
    assert.equal(replySessionTag(reply(session), 0), tag);
  }
  const withAnnouncement = Buffer.concat([Buffer.from(attr0Encode([["protocol", "tlsmgr_protocol"]]), "latin1"),
    reply(Buffer.from([SESSION_TAG_MARK, 3, 1, 2]))]);
  assert.equal(replySessionTag(withAnnouncement, withAnnouncement.indexOf("status")), 3);
  assert.equal(replySessionTag(reply(Buffer.from([1, 2, 3, 4])), 0), -1, "untagged");
  assert.equal(replySessionTag(reply(Buffer.alloc(0), -1), 0), -1, "a miss");
  assert.equal(replySessionTag(Buffer.from(attr0Encode([["status", 0]]), "latin1"), 0), -1, "no session");
});
