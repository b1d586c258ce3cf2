import { describe, expect, it } from 'vitest';

import {
  Debouncer,
  granteeKey,
  hasAccess,
  IPerson,
  IShare,
  addressOf,
  kindLabel,
  ShareModel,
  SharingClient
} from '../src/sharing';

const marie: IPerson = {
  kind: 'user',
  id: 'm-1',
  idp: 'cernbox.test',
  username: 'marie',
  displayName: 'Marie Curie',
  mail: 'marie@example.org'
};
const physics: IPerson = { kind: 'group', id: 'physics-lovers', idp: 'cernbox.test', displayName: 'Physics lovers' };
const richard: IPerson = {
  kind: 'federated',
  id: 'r-9',
  idp: 'cesnet.test',
  displayName: 'Richard Feynman',
  institution: 'cesnet.test'
};

function shareOf(person: IPerson, role: 'viewer' | 'editor', id = `s-${person.id}`): IShare {
  return {
    id,
    kind: person.kind,
    grantee: {
      id: person.id,
      idp: person.idp,
      username: person.username ?? person.id,
      displayName: person.displayName,
      institution: person.institution ?? person.idp
    },
    role,
    created: '2026-11-25T14:00:00+00:00'
  };
}

type Call = [string, string | undefined, string | undefined];

/** A fake server: answers by route, records calls. */
function fakeServer(routes: Record<string, (body: any) => [number, unknown]>) {
  const calls: Call[] = [];
  const fetcher = async (path: string, init?: { method?: string; body?: string }) => {
    calls.push([path, init?.method, init?.body]);
    const route = `${init?.method ?? 'GET'} ${path.split('?')[0]}`;
    const handler = routes[route];
    if (!handler) {
      return new Response(JSON.stringify({ message: `no route ${route}` }), { status: 404 });
    }
    const [status, body] = handler(init?.body ? JSON.parse(init.body) : null);
    return new Response(status === 204 ? null : JSON.stringify(body), { status });
  };
  return { calls, client: new SharingClient(fetcher) };
}

describe('SharingClient', () => {
  it('calls the server routes with the shapes the server expects', async () => {
    const share = shareOf(marie, 'editor');
    const { calls, client } = fakeServer({
      'GET api/cs3collab/shares': () => [200, { path: 'a b.ipynb', resourceId: 'x', canShare: true, shares: [] }],
      'POST api/cs3collab/shares': () => [201, share],
      'PATCH api/cs3collab/shares/user/s%2F1': () => [200, { ...share, role: 'viewer' }],
      'DELETE api/cs3collab/shares/user/s%2F1': () => [204, null],
      'GET api/cs3collab/people': () => [200, { people: [marie] }]
    });
    await client.list('Shared with me/a b.ipynb');
    await client.share('a b.ipynb', marie, 'editor');
    await client.changeRole({ ...share, id: 's/1' }, 'viewer');
    await client.revoke({ ...share, id: 's/1' });
    expect(await client.search('ma rie')).toEqual([marie]);
    expect(calls).toEqual([
      ['api/cs3collab/shares?path=Shared+with+me%2Fa+b.ipynb', undefined, undefined],
      [
        'api/cs3collab/shares',
        'POST',
        '{"path":"a b.ipynb","grantee":{"kind":"user","id":"m-1","idp":"cernbox.test"},"role":"editor"}'
      ],
      ['api/cs3collab/shares/user/s%2F1', 'PATCH', '{"role":"viewer"}'],
      ['api/cs3collab/shares/user/s%2F1', 'DELETE', undefined],
      ['api/cs3collab/people?q=ma+rie', undefined, undefined]
    ]);
  });

  it("rejects with the server's words", async () => {
    const { client } = fakeServer({
      'POST api/cs3collab/shares': () => [409, { message: 'Marie Curie already has access to a.ipynb', reason: null }]
    });
    await expect(client.share('a.ipynb', marie, 'viewer')).rejects.toMatchObject({
      status: 409,
      message: 'Marie Curie already has access to a.ipynb'
    });
  });
});

describe('what the dialog shows', () => {
  it('labels results by kind, federated ones by institution', () => {
    expect(kindLabel(marie)).toBe('account at cernbox.test');
    expect(kindLabel(physics)).toBe('group');
    expect(kindLabel(richard)).toBe('federated contact at cesnet.test');
  });

  it('gives the full user@idp of people, so that two of one name differ', () => {
    expect(addressOf(marie)).toBe('marie@cernbox.test');
    expect(addressOf({ ...marie, kind: 'federated', idp: 'cesnet.test' })).toBe('marie@cesnet.test');
    expect(addressOf(physics)).toBeNull();
  });

  it('keys entries by username@idp, groups by their id', () => {
    expect(granteeKey(shareOf(marie, 'viewer'))).toBe('marie@cernbox.test');
    expect(granteeKey(shareOf(physics, 'viewer'))).toBe('physics-lovers');
  });

  it('knows who has access already', () => {
    const shares = [shareOf(marie, 'viewer')];
    expect(hasAccess(marie, shares)).toBe(true);
    expect(hasAccess(richard, shares)).toBe(false);
  });
});

describe('ShareModel', () => {
  function model(canShare = true, shares: IShare[] = []) {
    const server = fakeServer({
      'GET api/cs3collab/shares': () => [
        200,
        {
          path: 'd/analysis.ipynb',
          resourceId: 'x',
          canShare,
          reason: canShare ? null : 'You are a viewer',
          owner: { id: 'e-1', idp: 'cernbox.test', username: 'einstein', displayName: 'Albert Einstein', institution: 'cernbox.test' },
          shares
        }
      ],
      'GET api/cs3collab/people': () => [200, { people: [marie, physics, richard] }],
      'POST api/cs3collab/shares': body => {
        const person = [marie, physics, richard].find(p => p.id === body.grantee.id)!;
        return [201, shareOf(person, body.role)];
      },
      'PATCH api/cs3collab/shares/user/s-m-1': body => [200, shareOf(marie, body.role)],
      'DELETE api/cs3collab/shares/user/s-m-1': () => [204, null]
    });
    const m = new ShareModel(server.client, 'd/analysis.ipynb');
    let renders = 0;
    m.onChange = () => renders++;
    return { m, server, renders: () => renders };
  }

  it('searches, picks, shares, changes a role and revokes', async () => {
    const { m, server, renders } = model();
    await m.load();
    expect(m.name).toBe('analysis.ipynb');
    expect(m.canShare).toBe(true);
    expect(m.readOnlyReason).toBeNull();
    expect(m.emptyLine).toBe('analysis.ipynb is not shared with anyone yet.');

    await m.search('m'); // too short: nothing asked
    expect(server.calls.filter(c => c[0].startsWith('api/cs3collab/people'))).toEqual([]);
    await m.search('mar');
    expect(m.results.map(p => p.displayName)).toEqual(['Marie Curie', 'Physics lovers', 'Richard Feynman']);

    m.pick(marie);
    m.setRole('editor');
    expect(m.results).toEqual([]);
    expect(m.query).toBe('Marie Curie');
    await m.share();
    expect(m.shares.map(s => [granteeKey(s), s.role])).toEqual([['marie@cernbox.test', 'editor']]);
    expect(m.picked).toBeNull();
    expect(m.query).toBe('');
    expect(m.error).toBeNull();

    await m.changeRole(m.shares[0], 'viewer');
    expect(m.shares[0].role).toBe('viewer');

    m.askRevoke(m.shares[0]);
    expect(m.confirming).toBe('s-m-1');
    await m.revoke(m.shares[0]);
    expect(m.shares).toEqual([]);
    expect(m.confirming).toBeNull();
    expect(renders()).toBeGreaterThan(6);
  });

  it('shows the server error in words and keeps the list as it was', async () => {
    const { m } = model(true, [shareOf(marie, 'viewer')]);
    await m.load();
    const failing = new ShareModel(
      new SharingClient(async () => new Response(JSON.stringify({ message: 'You cannot change this share' }), { status: 403 })),
      'd/analysis.ipynb'
    );
    failing.listing = m.listing;
    await failing.changeRole(failing.shares[0], 'editor');
    expect(failing.error).toBe('You cannot change this share');
    expect(failing.shares[0].role).toBe('viewer');
    expect(failing.busy).toBe(false);
  });

  it('asks for a pick before sharing', async () => {
    const { m, server } = model();
    await m.load();
    await m.share();
    expect(m.error).toBe('Pick a person or group first.');
    expect(server.calls.some(c => c[1] === 'POST')).toBe(false);
  });

  it('is read-only, with the reason, for someone who cannot share', async () => {
    const { m } = model(false, [shareOf(physics, 'viewer')]);
    await m.load();
    expect(m.canShare).toBe(false);
    expect(m.readOnlyReason).toBe('You are a viewer');
    expect(m.ownerLine).toBe('Owner: Albert Einstein (cernbox.test)');
    expect(m.shares).toHaveLength(1);
    m.listing = { ...m.listing!, shares: [] };
    expect(m.emptyLine).toBe('Only people who may share analysis.ipynb see who else has access.');
  });

  it('keeps only the newest search answer', async () => {
    const answers: ((r: Response) => void)[] = [];
    const client = new SharingClient(() => new Promise<Response>(resolve => answers.push(resolve)));
    const m = new ShareModel(client, 'a.ipynb');
    const first = m.search('ma');
    const second = m.search('mar');
    answers[1](new Response(JSON.stringify({ people: [marie] })));
    await second;
    answers[0](new Response(JSON.stringify({ people: [physics] })));
    await first;
    expect(m.results).toEqual([marie]);
  });
});

describe('Debouncer', () => {
  it('calls once with the last value after the quiet time', () => {
    const timers = new Map<number, () => void>();
    let next = 0;
    const seen: string[] = [];
    const debouncer = new Debouncer<string>(
      value => seen.push(value),
      250,
      cb => {
        timers.set(++next, cb);
        return next;
      },
      id => timers.delete(id)
    );
    debouncer.call('m');
    debouncer.call('ma');
    debouncer.call('mar');
    expect(timers.size).toBe(1);
    for (const [id, cb] of [...timers]) {
      timers.delete(id); // fired
      cb();
    }
    expect(seen).toEqual(['mar']);
    debouncer.call('x');
    debouncer.cancel();
    expect(timers.size).toBe(0);
  });
});
