/**
 * secret-file.ts - read a file that holds a secret (key_wrap_file,
 *                  password_file) so that nobody but its owner could have
 *                  read or changed it, and the file checked is the file read.
 * Owns: one open (O_NOFOLLOW), fstat and read through that one descriptor;
 *       the rules: a regular file, owned by root or by the user the daemon
 *       was started as, no access for group or others (0600, 0400); reading
 *       it with the start-up user's ids even while start-up work runs with
 *       mail_owner's (master/eugid.ts asStartUser).
 * Not here: what the secret is (tickets/key-wrap.ts, redis/table.ts), the
 *           fatal texts around it (the callers name their file and context).
 * See also: docs/security.md, man/tlsmgr.8 (REDIS TABLE FILES)
 *
 * Start-up only (synchronous).
 */

import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { errorCode, errorText, TlsmgrError } from "../log/errors.js";
import { asStartUser } from "./eugid.js";

/** What is wrong with a secret file (the message says it for people; code ERR_SECRET_FILE). */
export class SecretFileError extends TlsmgrError {
  constructor(message: string) {
    super(message, "ERR_SECRET_FILE");
  }
}

/** modeText - "0644" */
function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/**
 * readSecretFile - the bytes of PATH, read as described in the header;
 * throws SecretFileError saying what is wrong (without the path: the
 * caller names it).
 */
export function readSecretFile(path: string): Buffer {
  return asStartUser(() => {
    let fd: number | undefined;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NOCTTY | constants.O_NONBLOCK);
      const st = fstatSync(fd);
      if (!st.isFile()) throw new SecretFileError("not a regular file");
      const uid = process.getuid?.() ?? 0;
      if (st.uid !== 0 && st.uid !== uid)
        throw new SecretFileError(`owned by uid ${st.uid}, not by root${uid !== 0 ? ` or uid ${uid}` : ""}: its owner could change it`);
      if ((st.mode & 0o077) !== 0)
        throw new SecretFileError(`mode ${modeText(st.mode)} lets others read or change it: chmod 600 ${path}`);
      return readFileSync(fd);
    } catch (err) {
      if (err instanceof SecretFileError) throw err;
      if (errorCode(err) === "ELOOP") throw new SecretFileError("is a symbolic link: name the file itself");
      throw new SecretFileError(`cannot read: ${errorText(err)}`);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  });
}
