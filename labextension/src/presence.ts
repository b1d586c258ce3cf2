/**
 * Presence, as pure functions: who is in the room (from the awareness
 * states) and what the status chip says (from the connection and the
 * service's messages). The widgets in widgets.ts only render these.
 */

import { AWARENESS_FIELD, Role } from './protocol';

/** The `user` field of an awareness state: the /api/me identity (cs3collab/jupyter/identity.py). */
export interface IAwarenessUser {
  username?: string;
  name?: string;
  display_name?: string;
  initials?: string | null;
  color?: string | null;
  avatar_url?: string | null;
  idp?: string | null;
}

export type ParticipantRole = Role | 'owner';

export interface IParticipant {
  /** awareness client ids of this person (one per tab) */
  clientIds: number[];
  username: string;
  displayName: string;
  initials: string;
  color: string;
  institution: string;
  /** "owner" for the file's owner (an editor who owns it) */
  role: ParticipantRole | null;
  isMe: boolean;
  /** client id whose cursor to follow (the tab with a cursor, else the first) */
  cursorClientId: number;
}

/** The institution of a user: an explicit `idp`, else the `@idp` suffix of the username. */
export function institutionOf(user: IAwarenessUser): string {
  const idp = typeof user.idp === 'string' ? user.idp.trim() : '';
  if (idp) {
    return hostOf(idp);
  }
  const username = user.username ?? '';
  const at = username.lastIndexOf('@');
  return at >= 0 && at < username.length - 1 ? hostOf(username.slice(at + 1)) : '';
}

function hostOf(idp: string): string {
  // an idp is often a URL (https://cernbox.cern.ch): show its host
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(idp)) {
      return new URL(idp).host;
    }
  } catch {
    // not a URL
  }
  return idp;
}

/** Initials from the identity, else from the display name ("Marie Curie" → "MC"). */
export function initialsOf(user: IAwarenessUser): string {
  if (user.initials) {
    return user.initials;
  }
  const name = (user.display_name || user.name || user.username || '?').trim();
  // words that start with a letter: "Richard Feynman (cesnet)" → "RF"
  const words = name.split(/\s+/).filter(word => /^\p{L}/u.test(word));
  const letters =
    words.length > 1 ? [...words[0]][0] + [...words[words.length - 1]][0] : [...(words[0] ?? name)].slice(0, 2).join('');
  return letters.toUpperCase();
}

const FALLBACK_COLORS = [
  'var(--jp-collaborator-color1)',
  'var(--jp-collaborator-color2)',
  'var(--jp-collaborator-color3)',
  'var(--jp-collaborator-color4)',
  'var(--jp-collaborator-color5)',
  'var(--jp-collaborator-color6)',
  'var(--jp-collaborator-color7)'
];

function colorOf(user: IAwarenessUser, username: string): string {
  if (user.color) {
    return user.color;
  }
  let hash = 0;
  for (const ch of username) {
    hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  }
  return FALLBACK_COLORS[hash % FALLBACK_COLORS.length];
}

function roleOf(state: Record<string, any>): ParticipantRole | null {
  const field = state[AWARENESS_FIELD];
  const role = field && typeof field === 'object' ? field.role : null;
  if (role === 'editor' && field.owner === true) {
    return 'owner';
  }
  return role === 'editor' || role === 'viewer' ? role : null;
}

const ROLE_RANK: Record<ParticipantRole, number> = { viewer: 1, editor: 2, owner: 3 };

function hasCursor(state: Record<string, any>): boolean {
  return Array.isArray(state.cursors) && state.cursors.length > 0;
}

/**
 * One participant per person (username), in a stable order: me first, then
 * by display name. States without a `user` (the server's own `{}`) are not
 * people. Several tabs of one person merge; a known role wins over none,
 * owner over editor over viewer (a person's strongest tab).
 */
export function participantsFrom(
  states: Map<number, Record<string, any>>,
  myClientId: number
): IParticipant[] {
  const byUser = new Map<string, IParticipant>();
  const myUsername = (states.get(myClientId)?.user as IAwarenessUser | undefined)?.username;
  for (const [clientId, state] of states) {
    const user = state?.user as IAwarenessUser | undefined;
    if (!user || typeof user !== 'object' || !user.username) {
      continue;
    }
    const role = roleOf(state);
    const existing = byUser.get(user.username);
    if (existing) {
      existing.clientIds.push(clientId);
      if (role && (!existing.role || ROLE_RANK[role] > ROLE_RANK[existing.role])) {
        existing.role = role;
      }
      if (clientId === myClientId) {
        existing.isMe = true;
      }
      if (hasCursor(state) && !hasCursor(states.get(existing.cursorClientId) ?? {})) {
        existing.cursorClientId = clientId;
      }
      continue;
    }
    byUser.set(user.username, {
      clientIds: [clientId],
      username: user.username,
      displayName: user.display_name || user.name || user.username,
      initials: initialsOf(user),
      color: colorOf(user, user.username),
      institution: institutionOf(user),
      role,
      isMe: clientId === myClientId || user.username === myUsername,
      cursorClientId: clientId
    });
  }
  return [...byUser.values()].sort((a, b) => {
    if (a.isMe !== b.isMe) {
      return a.isMe ? -1 : 1;
    }
    return a.displayName.localeCompare(b.displayName) || a.username.localeCompare(b.username);
  });
}

/** The avatar's tooltip: "Marie Curie · cernbox.test · editor" (and "(you)"). */
export function tooltipOf(participant: IParticipant): string {
  const parts = [participant.displayName + (participant.isMe ? ' (you)' : '')];
  if (participant.institution) {
    parts.push(participant.institution);
  }
  if (participant.role) {
    parts.push(participant.role);
  }
  return parts.join(' · ');
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface IStatus {
  connection: ConnectionState;
  /** words for the last fatal close, when `connection` is disconnected */
  closeReason: string | null;
  /** my role, from the service's role message, else from the contents model */
  role: Role | null;
  /** the room's read-only reason other than my role ("locked by <app>") */
  lockedReason: string | null;
  /** why the room cannot save its live state now (cs3collab:save-failed), until it saves again */
  saveProblem?: string | null;
  people: number;
}

export type ChipKind =
  | 'live'
  | 'viewer'
  | 'locked'
  | 'unsaved'
  | 'reconnecting'
  | 'disconnected'
  | 'connecting';

export interface IChip {
  kind: ChipKind;
  text: string;
}

/** What the status chip shows; the most severe condition wins. */
export function statusChip(status: IStatus): IChip {
  if (status.connection === 'disconnected') {
    return {
      kind: 'disconnected',
      text: status.closeReason ? `Disconnected: ${status.closeReason}` : 'Disconnected'
    };
  }
  if (status.connection === 'reconnecting') {
    return { kind: 'reconnecting', text: 'Reconnecting…' };
  }
  if (status.connection === 'connecting') {
    return { kind: 'connecting', text: 'Connecting…' };
  }
  if (status.saveProblem) {
    return { kind: 'unsaved', text: `Not saved: ${status.saveProblem}` };
  }
  if (status.role === 'viewer') {
    return { kind: 'viewer', text: 'Read-only: you are a viewer' };
  }
  if (status.lockedReason) {
    return { kind: 'locked', text: `Read-only: ${status.lockedReason}` };
  }
  const people = Math.max(1, status.people);
  return { kind: 'live', text: `Live · ${people} ${people === 1 ? 'person' : 'people'}` };
}

/**
 * The read-only reason of a role message split into my role and the room's
 * lock reason: `readOnly` is `"viewer"` for a viewer, or the room's reason.
 */
export function fromRoleMessage(role: Role, readOnly: string | null): { role: Role; lockedReason: string | null } {
  if (readOnly === null || readOnly === 'viewer') {
    return { role, lockedReason: null };
  }
  return { role, lockedReason: readOnly };
}
