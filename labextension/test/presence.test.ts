import { describe, expect, it } from 'vitest';

import {
  fromRoleMessage,
  initialsOf,
  institutionOf,
  IStatus,
  participantsFrom,
  statusChip,
  tooltipOf
} from '../src/presence';

const einstein = {
  username: 'einstein@cernbox.test',
  display_name: 'Albert Einstein',
  initials: 'AE',
  color: '#123456',
  idp: 'cernbox.test'
};
const marie = { username: 'marie@cernbox.test', display_name: 'Marie Curie', initials: 'MC', color: '#654321' };
const guest = { username: 'richard@https://cesnet.test', display_name: 'Richard Feynman (cesnet)' };

describe('participantsFrom', () => {
  it('lists people from awareness states, me first, with role and institution', () => {
    const states = new Map<number, Record<string, any>>([
      [1, {}], // the server's own state: not a person
      [7, { user: marie, cs3collab: { role: 'editor' } }],
      [3, { user: einstein, cs3collab: { role: 'editor' } }],
      [9, { user: guest, cs3collab: { role: 'viewer' } }]
    ]);
    const people = participantsFrom(states, 3);
    expect(people.map(p => [p.displayName, p.isMe, p.role, p.institution, p.initials])).toEqual([
      ['Albert Einstein', true, 'editor', 'cernbox.test', 'AE'],
      ['Marie Curie', false, 'editor', 'cernbox.test', 'MC'],
      ['Richard Feynman (cesnet)', false, 'viewer', 'cesnet.test', 'RF']
    ]);
    expect(people[1].color).toBe('#654321');
    expect(people[2].color).toMatch(/^var\(--jp-collaborator-color\d\)$/);
  });

  it('merges several tabs of one person and follows the tab with a cursor', () => {
    const states = new Map<number, Record<string, any>>([
      [4, { user: marie }],
      [5, { user: marie, cs3collab: { role: 'editor' }, cursors: [{ head: {}, anchor: {} }] }]
    ]);
    const [person] = participantsFrom(states, 99);
    expect(person.clientIds).toEqual([4, 5]);
    expect(person.role).toBe('editor');
    expect(person.cursorClientId).toBe(5);
    expect(person.isMe).toBe(false);
  });

  it('shows the owner as owner, whichever of their tabs says so', () => {
    const states = new Map<number, Record<string, any>>([
      [3, { user: einstein, cs3collab: { role: 'editor' } }],
      [4, { user: einstein, cs3collab: { role: 'editor', owner: true } }],
      [7, { user: marie, cs3collab: { role: 'viewer', owner: true } }] // only an editor can own
    ]);
    const [owner, viewer] = participantsFrom(states, 7).sort((a, b) => a.displayName.localeCompare(b.displayName));
    expect(owner.role).toBe('owner');
    expect(tooltipOf(owner)).toBe('Albert Einstein · cernbox.test · owner');
    expect(viewer.role).toBe('viewer');
  });

  it('gives no role to someone whose extension did not say', () => {
    const people = participantsFrom(new Map([[2, { user: marie }]]), 1);
    expect(people[0].role).toBeNull();
    expect(tooltipOf(people[0])).toBe('Marie Curie · cernbox.test');
  });
});

describe('identity helpers', () => {
  it('institution from idp, else from the username suffix, URLs shown as hosts', () => {
    expect(institutionOf({ username: 'a@x.org', idp: 'https://idp.example.org/' })).toBe('idp.example.org');
    expect(institutionOf({ username: 'a@x.org' })).toBe('x.org');
    expect(institutionOf({ username: 'local' })).toBe('');
  });

  it('initials from the name when the identity has none', () => {
    expect(initialsOf({ display_name: 'Marie Curie' })).toBe('MC');
    expect(initialsOf({ username: 'einstein@x' })).toBe('EI');
    expect(initialsOf({ initials: 'Q' })).toBe('Q');
  });

  it('tooltip names me, institution and role', () => {
    const [me] = participantsFrom(new Map([[3, { user: einstein, cs3collab: { role: 'editor' } }]]), 3);
    expect(tooltipOf(me)).toBe('Albert Einstein (you) · cernbox.test · editor');
  });
});

describe('statusChip', () => {
  const live: IStatus = { connection: 'connected', closeReason: null, role: 'editor', lockedReason: null, people: 2 };

  it('says how many people are live', () => {
    expect(statusChip(live)).toEqual({ kind: 'live', text: 'Live · 2 people' });
    expect(statusChip({ ...live, people: 1 }).text).toBe('Live · 1 person');
    expect(statusChip({ ...live, people: 0 }).text).toBe('Live · 1 person');
  });

  it('says read-only for a viewer, and for another app’s lock', () => {
    expect(statusChip({ ...live, role: 'viewer' }).text).toBe('Read-only: you are a viewer');
    expect(statusChip({ ...live, lockedReason: 'locked by Collabora' }).text).toBe('Read-only: locked by Collabora');
  });

  it('says when the room cannot save, until it saves again', () => {
    expect(statusChip({ ...live, saveProblem: 'not valid nbformat; retrying' })).toEqual({
      kind: 'unsaved',
      text: 'Not saved: not valid nbformat; retrying'
    });
    expect(statusChip({ ...live, saveProblem: null }).kind).toBe('live');
    expect(statusChip({ ...live, saveProblem: 'x', connection: 'reconnecting' }).kind).toBe('reconnecting');
  });

  it('connection problems win over roles', () => {
    expect(statusChip({ ...live, role: 'viewer', connection: 'reconnecting' }).text).toBe('Reconnecting…');
    expect(statusChip({ ...live, connection: 'disconnected', closeReason: 'access revoked' }).text).toBe(
      'Disconnected: access revoked'
    );
    expect(statusChip({ ...live, connection: 'disconnected' }).text).toBe('Disconnected');
  });

  it('splits the role message into my role and the room’s lock', () => {
    expect(fromRoleMessage('viewer', 'viewer')).toEqual({ role: 'viewer', lockedReason: null });
    expect(fromRoleMessage('editor', 'locked by office')).toEqual({ role: 'editor', lockedReason: 'locked by office' });
    expect(fromRoleMessage('editor', null)).toEqual({ role: 'editor', lockedReason: null });
  });
});
