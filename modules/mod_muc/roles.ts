// Roles and affiliations of Multi-User Chat (XEP-0045 §5): the default role an affiliation gets
// on entering, and the permission matrix for changing roles (§8.2–8.4, §9.6–9.7) and affiliations
// (§9.1–9.4, §10.3–10.7). Pure functions over plain values; the room applies them.
import type { StanzaErrorCondition, StanzaErrorType } from '../../core/api.ts';

export type Role = 'moderator' | 'participant' | 'visitor' | 'none';
export type Affiliation = 'owner' | 'admin' | 'member' | 'none' | 'outcast';

export const ROLES: readonly Role[] = ['moderator', 'participant', 'visitor', 'none'];
export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'admin', 'member', 'none', 'outcast'];

export function isRole(s: string | undefined): s is Role {
  return s !== undefined && (ROLES as readonly string[]).includes(s);
}

export function isAffiliation(s: string | undefined): s is Affiliation {
  return s !== undefined && (AFFILIATIONS as readonly string[]).includes(s);
}

/** §5.2 hierarchy: each affiliation has the privileges of the ones below it. */
export const AFFILIATION_RANK: Readonly<Record<Affiliation, number>> = { outcast: -1, none: 0, member: 1, admin: 2, owner: 3 };
export const ROLE_RANK: Readonly<Record<Role, number>> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

/** §5.1.2 initial role from the affiliation; undefined for outcasts (they may not enter). */
export function defaultRole(affiliation: Affiliation, moderated: boolean): Role | undefined {
  switch (affiliation) {
    case 'owner':
    case 'admin':
      return 'moderator';
    case 'member':
      return 'participant';
    case 'none':
      return moderated ? 'visitor' : 'participant';
    case 'outcast':
      return undefined;
  }
}

/** Who is acting or being acted on: the role in the room (none when absent) and the affiliation. */
export interface Standing {
  role: Role;
  affiliation: Affiliation;
}

/** A refused change: the error the XEP names for it. */
export interface Refusal {
  type: StanzaErrorType;
  condition: StanzaErrorCondition;
  text: string;
}

const forbidden = (text: string): Refusal => ({ type: 'auth', condition: 'forbidden', text });
const notAllowed = (text: string): Refusal => ({ type: 'cancel', condition: 'not-allowed', text });

/**
 * May `actor` give the occupant `target` the role `to`? (§8.2 kick, §8.3/8.4 voice, §9.6/9.7
 * moderator, the role state chart of §5.1.3.) Only moderators change roles (forbidden otherwise);
 * a higher affiliation protects the target (not-allowed):
 *  - nobody takes voice or moderation from an admin or owner (§8.4, §9.7), nor kicks an occupant
 *    whose affiliation is above their own (§8.2);
 *  - a moderator is kicked, silenced or demoted only by an admin or owner (§5.1.3 chart);
 *  - only admins and owners grant moderation (§9.6).
 */
export function checkRoleChange(actor: Standing, target: Standing, to: Role): Refusal | undefined {
  if (actor.role !== 'moderator') return forbidden('Only moderators may change roles');
  const actorRank = AFFILIATION_RANK[actor.affiliation];
  const targetRank = AFFILIATION_RANK[target.affiliation];
  const actorIsAdmin = actorRank >= AFFILIATION_RANK.admin;
  if (to === 'moderator') {
    return actorIsAdmin ? undefined : forbidden('Only admins and owners may grant moderator status');
  }
  if (targetRank > actorRank) return notAllowed('The occupant has a higher affiliation than you');
  if (targetRank >= AFFILIATION_RANK.admin && to !== 'none') {
    return notAllowed('Admins and owners keep voice and moderator status');
  }
  if (target.role === 'moderator' && !actorIsAdmin) {
    return notAllowed('Only admins and owners may remove a moderator');
  }
  return undefined;
}

/**
 * May `actor` (by affiliation) change a user's affiliation from `from` to `to`? (§5.2.2 state
 * chart, §9.1–9.4 for admins, §10.3–10.7 for owners.) Owners may change anything; admins may
 * ban, grant and revoke membership of members and unaffiliated users; an admin acting on an admin
 * or owner is refused with not-allowed (§9.1: an admin banning an owner), anyone else with
 * forbidden. The self-ban and last-owner rules are the room's (they need the whole list).
 */
export function checkAffiliationChange(actor: Affiliation, from: Affiliation, to: Affiliation): Refusal | undefined {
  if (actor === 'owner') return undefined;
  if (actor !== 'admin') return forbidden('Only admins and owners may change affiliations');
  if (to === 'owner' || to === 'admin') return forbidden('Only owners may grant admin or owner status');
  if (from === 'owner' || from === 'admin') return notAllowed('Only owners may change the affiliation of an admin or owner');
  return undefined;
}

/**
 * The role an occupant has after an affiliation change (§5.1.3 note, §9.3, §10.3–10.7): admins and
 * owners become moderators; losing admin or owner falls back to the new affiliation's default
 * role; becoming a member gives voice in a moderated room; otherwise the role stays. Undefined
 * when the occupant must leave (banned, or no longer a member of a members-only room).
 */
export function roleAfterAffiliationChange(
  current: Role,
  from: Affiliation,
  to: Affiliation,
  room: { moderated: boolean; membersOnly: boolean },
): Role | undefined {
  if (to === 'outcast') return undefined;
  if (room.membersOnly && AFFILIATION_RANK[to] < AFFILIATION_RANK.member) return undefined;
  if (to === 'owner' || to === 'admin') return 'moderator';
  if (from === 'owner' || from === 'admin') return defaultRole(to, room.moderated);
  if (to === 'member' && current === 'visitor') return 'participant';
  return current;
}
