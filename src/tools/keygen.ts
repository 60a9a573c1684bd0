/**
 * keygen.ts - `tlsmgr-postfix keygen FILE`: make the key_wrap_file that
 *             seals session ticket keys stored in Redis.
 * Owns: creating FILE (never replacing one), mode 0600, with a fresh secret.
 * Not here: the secret's format and use (tickets/key-wrap.ts); the command
 *           line (tools/tlsmgr-postfix.ts calls keygen()).
 * See also: man/tlsmgr.8, redis/table.ts (key_wrap_file)
 */

import { closeSync, fchmodSync, fsyncSync, openSync, unlinkSync, writeSync, constants } from "node:fs";
import { keyWrapSecretNew, keyWrapSecretText } from "../tickets/key-wrap.js";
import { msgFatal } from "../log/msg.js";
import { errorCode, errorText } from "../log/errors.js";

/**
 * keygen - create FILE with a new secret, mode 0600. Fatal (msgFatal) when
 * FILE exists (a secret shared by a farm is not replaced by accident: remove
 * it first) or cannot be written.
 */
export function keygen(file: string): void {
  if (file === "") msgFatal("keygen: missing FILE argument");
  if (file.includes("\0")) msgFatal("keygen: bad file name");
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if (errorCode(err) === "EEXIST")
      msgFatal(`keygen: ${file} exists: not replacing a key wrap secret (remove it first to make a new one; every host must then get the new file)`);
    return msgFatal(`keygen: cannot create ${file}: ${errorText(err)}`);
  }
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, keyWrapSecretText(keyWrapSecretNew()));
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(file);
    } catch {
      /* reported below either way */
    }
    return msgFatal(`keygen: cannot write ${file}: ${errorText(err)}`);
  }
  closeSync(fd);
}
