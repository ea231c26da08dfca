// Occupant identifiers (XEP-0421 §4.1): stable per real bare JID and room, unique, and
// pseudonymous — an HMAC of the bare JID under a random secret kept with the room's state, so it
// cannot be recomputed from the JID alone and differs between rooms.
import { createHmac, randomBytes } from 'node:crypto';

/** A new room secret: 32 random bytes, base64. */
export function newRoomSecret(): string {
  return randomBytes(32).toString('base64');
}

/** The occupant id of `bareJid` in the room with `secret`: hex HMAC-SHA-256 (64 characters). */
export function occupantId(secret: string, bareJid: string): string {
  return createHmac('sha256', Buffer.from(secret, 'base64')).update(bareJid, 'utf8').digest('hex');
}
