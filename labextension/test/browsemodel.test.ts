import { describe, expect, it } from 'vitest';

import {
  BrowseClient,
  formatDate,
  formatSize,
  IFileInfo,
  infoRows,
  IReceivedShare,
  ISentShare,
  lockLabel,
  receivedRows,
  sentRows
} from '../src/browsemodel';

const einstein = {
  username: 'einstein',
  idp: 'cernbox.test',
  displayName: 'Albert Einstein',
  institution: 'cernbox.test'
};
const marie = {
  id: 'm-1',
  username: 'marie',
  idp: 'cernbox.test',
  displayName: 'Marie Curie',
  institution: 'cernbox.test'
};

function received(name: string, state: IReceivedShare['state'], extra: Partial<IReceivedShare> = {}): IReceivedShare {
  return {
    id: `id-${name}`,
    kind: 'user',
    state,
    name,
    type: 'notebook',
    path: state === 'accepted' ? `Shared with me/${name}` : null,
    owner: einstein,
    role: 'editor',
    size: 2150,
    mtime: '2026-11-25T12:05:00+00:00',
    shared: '2026-11-25T12:00:00+00:00',
    ...extra
  };
}

function info(extra: Partial<IFileInfo> = {}): IFileInfo {
  return {
    path: 'analysis.ipynb',
    name: 'analysis.ipynb',
    type: 'notebook',
    owner: einstein,
    size: 1536,
    mtime: '2026-11-25T12:05:00+00:00',
    permissions: { role: 'owner', can: ['read', 'write', 'share', 'delete'] },
    lock: null,
    shares: [],
    versions: 3,
    resourceId: 's$p!1',
    ...extra
  };
}

describe('BrowseClient', () => {
  it('calls the browser routes with encoded ids and paths', async () => {
    const calls: [string, string | undefined, string | undefined][] = [];
    const client = new BrowseClient(async (path, init) => {
      calls.push([path, init?.method, init?.body]);
      if (path === 'api/cs3collab/received' || path === 'api/cs3collab/shared-by-me') {
        return new Response(JSON.stringify({ shares: [] }));
      }
      return new Response(JSON.stringify({ ok: true }));
    });
    expect(await client.received()).toEqual([]);
    expect(await client.sharedByMe()).toEqual([]);
    await client.setState({ kind: 'federated', id: 'a/b c' }, 'accepted');
    await client.info('Shared with me/a b.ipynb');
    expect(calls).toEqual([
      ['api/cs3collab/received', undefined, undefined],
      ['api/cs3collab/shared-by-me', undefined, undefined],
      ['api/cs3collab/received/federated/a%2Fb%20c', 'POST', '{"state":"accepted"}'],
      ['api/cs3collab/info?path=Shared+with+me%2Fa+b.ipynb', undefined, undefined]
    ]);
  });

  it('turns an error answer into its message and status', async () => {
    const client = new BrowseClient(
      async () => new Response(JSON.stringify({ message: "Cannot describe 'x': not found" }), { status: 404 })
    );
    await expect(client.info('x')).rejects.toMatchObject({ status: 404, message: "Cannot describe 'x': not found" });
  });
});

describe('formatting', () => {
  it('gives sizes in human units', () => {
    expect(formatSize(812)).toBe('812 B');
    expect(formatSize(2150)).toBe('2.1 KB');
    expect(formatSize(14 * 1024 * 1024)).toBe('14 MB');
    expect(formatSize(null)).toBe('');
  });

  it('gives local date and time', () => {
    const local = new Date(2026, 10, 25, 13, 5);
    expect(formatDate(local.toISOString())).toBe('2026-11-25 13:05');
    expect(formatDate(null)).toBe('');
    expect(formatDate('garbage')).toBe('');
  });
});

describe('Shared with me rows', () => {
  it('puts pending shares first, offering accept and decline; accepted ones open', () => {
    const rows = receivedRows([
      received('old.ipynb', 'accepted', { shared: '2026-11-01T00:00:00+00:00' }),
      received('gone.ipynb', 'declined'),
      received('new.ipynb', 'pending'),
      received('newer.ipynb', 'accepted', { shared: '2026-11-20T00:00:00+00:00' })
    ]);
    expect(rows.map(r => [r.share.name, r.actions])).toEqual([
      ['new.ipynb', ['accept', 'decline']],
      ['newer.ipynb', ['open']],
      ['old.ipynb', ['open']],
      ['gone.ipynb', ['accept']]
    ]);
    expect(rows[0].from).toBe('from Albert Einstein (cernbox.test)');
    expect(rows[0].details).toMatch(/^editor · 2\.1 KB · modified \d{4}-\d\d-\d\d \d\d:\d\d$/);
    expect(rows[3].details).toContain('declined');
  });

  it('shows a federated share with its institution and no size', () => {
    const [row] = receivedRows([
      received('remote.ipynb', 'pending', {
        kind: 'federated',
        size: null,
        role: 'viewer',
        owner: { username: 'u-1', idp: 'cesnet.test', displayName: 'Richard Feynman', institution: 'cesnet.test' }
      })
    ]);
    expect(row.from).toBe('from Richard Feynman (cesnet.test)');
    expect(row.details.startsWith('viewer · federated')).toBe(true);
  });
});

describe('Shared by me rows', () => {
  it('names file, grantee and role; only files in My files open', () => {
    const shares: ISentShare[] = [
      {
        id: '2',
        kind: 'group',
        path: 'b.ipynb',
        name: 'b.ipynb',
        grantee: { ...marie, displayName: 'physics-lovers' },
        role: 'viewer',
        created: null
      },
      { id: '1', kind: 'user', path: 'a.ipynb', name: 'a.ipynb', grantee: marie, role: 'editor', created: '2026-11-25T12:00Z' },
      { id: '3', kind: 'user', path: null, name: 'elsewhere.txt', grantee: marie, role: 'viewer', created: null }
    ];
    const rows = sentRows(shares);
    expect(rows.map(r => [r.share.name, r.to, r.openable])).toEqual([
      ['a.ipynb', 'with Marie Curie (cernbox.test)', true],
      ['b.ipynb', 'with group physics-lovers', true],
      ['elsewhere.txt', 'with Marie Curie (cernbox.test)', false]
    ]);
    expect(rows[0].details).toMatch(/^editor · shared /);
  });
});

describe('File info rows', () => {
  it('shows owner, size, modified, permissions, lock, shares and versions', () => {
    const rows = infoRows(
      info({
        lock: {
          app: 'cs3collab',
          holder: { displayName: 'Albert Einstein', username: 'einstein', idp: 'cernbox.test' },
          expires: null
        },
        shares: [
          { kind: 'user', grantee: marie, role: 'editor' },
          { kind: 'group', grantee: { username: 'g', idp: '', displayName: 'physics-lovers' }, role: 'viewer' }
        ]
      })
    );
    const byField = Object.fromEntries(rows.map(r => [r.field, r.value]));
    expect(rows.map(r => r.field)).toEqual(['owner', 'size', 'modified', 'permissions', 'lock', 'shares', 'versions']);
    expect(byField.owner).toBe('Albert Einstein (cernbox.test)');
    expect(byField.size).toBe('1.5 KB');
    expect(byField.permissions).toBe('Owner: read, write, share, delete');
    expect(byField.lock).toBe('Locked by cs3collab (live editing) · Albert Einstein (cernbox.test)');
    expect(byField.shares).toBe('Marie Curie (cernbox.test): editor, group physics-lovers: viewer');
    expect(byField.versions).toBe('3 versions');
  });

  it('says what a recipient cannot see, and what is not there', () => {
    const rows = infoRows(info({ permissions: { role: 'viewer', can: ['read'] }, shares: null, versions: 0 }));
    const byField = Object.fromEntries(rows.map(r => [r.field, r.value]));
    expect(byField.permissions).toBe('Viewer: read');
    expect(byField.shares).toBe('Visible to the owner only');
    expect(byField.lock).toBe('Not locked');
    expect(byField.versions).toBe('No earlier versions');
    expect(infoRows(info({ shares: [] })).find(r => r.field === 'shares')?.value).toBe('Not shared');
  });

  it('leaves out size, lock and versions of a folder', () => {
    expect(infoRows(info({ type: 'directory', size: null, versions: null })).map(r => r.field)).toEqual([
      'owner',
      'modified',
      'permissions',
      'shares'
    ]);
  });

  it('names another application holding the lock', () => {
    expect(lockLabel({ app: 'wopi', holder: null, expires: null })).toBe('Locked by wopi');
    // another app's lock names its holder and institution, at home and (from the sharing site) elsewhere
    expect(
      lockLabel({
        app: 'Collabora Online',
        holder: { displayName: 'Albert Einstein', username: 'einstein', idp: 'cernbox.test' },
        expires: null
      })
    ).toBe('Locked by Collabora Online (Albert Einstein, cernbox.test)');
  });

  it('tells apart two people who would read the same, by their full address', () => {
    const local = { ...marie };
    const remote = { ...marie, id: 'm-2', idp: 'cesnet.test', institution: 'cesnet.test' };
    const namesake = { ...marie, id: 'm-3', username: 'mcurie' };
    const shares = (people: (typeof marie)[]) =>
      infoRows(info({ shares: people.map(grantee => ({ kind: 'user', grantee, role: 'viewer' })) })).find(
        r => r.field === 'shares'
      )?.value;
    // two institutions: the institution is enough
    expect(shares([local, remote])).toBe('Marie Curie (cernbox.test): viewer, Marie Curie (cesnet.test): viewer');
    // one institution: user@idp
    expect(shares([local, namesake])).toBe(
      'Marie Curie (marie@cernbox.test): viewer, Marie Curie (mcurie@cernbox.test): viewer'
    );
  });
});
