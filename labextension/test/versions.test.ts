import { describe, expect, it } from 'vitest';

import {
  diffTitle,
  formatAuthors,
  formatTime,
  relativeTime,
  saveFeedback,
  restoredLabel,
  restoredNotice,
  IVersion,
  keepLoaded,
  mergePages,
  PAGE_SIZE,
  refreshLimit,
  previewCells,
  tagNameProblem,
  VersionsClient
} from '../src/versions';

function version(key: string, extra: Partial<IVersion> = {}): IVersion {
  return { key, etag: `"${key}"`, time: 0, size: 1, authors: [], tags: [], current: false, ...extra };
}

describe('VersionsClient', () => {
  it('resolves the fileId once, then calls the proxy with encoded segments', async () => {
    const calls: [string, string | undefined, string | undefined][] = [];
    const client = new VersionsClient(async (path, init) => {
      calls.push([path, init?.method, init?.body]);
      if (path.startsWith('api/cs3collab/file-id')) {
        return new Response(JSON.stringify({ fileId: 'b64.abc' }));
      }
      return new Response(JSON.stringify({ versions: [], tags: {}, total: 0, offset: 0, limit: 20, ok: true }));
    }, 'Shared with me/a b.ipynb');
    await client.list(20, 10);
    await client.tag('sent to referee', 'current');
    await client.untag('a/b');
    await client.restore('v1');
    expect(calls).toEqual([
      ['api/cs3collab/file-id?path=Shared+with+me%2Fa+b.ipynb&type=notebook', undefined, undefined],
      ['api/cs3collab/versions/b64.abc?limit=10&offset=20', undefined, undefined],
      ['api/cs3collab/versions/b64.abc/tags', 'POST', '{"name":"sent to referee","key":"current"}'],
      ['api/cs3collab/versions/b64.abc/tags/a%2Fb', 'DELETE', undefined],
      ['api/cs3collab/versions/b64.abc/v1/restore', 'POST', undefined]
    ]);
  });

  it('asks the server for the diff of a version against the live notebook', async () => {
    const calls: [string, string | undefined, any][] = [];
    const client = new VersionsClient(async (path, init) => {
      calls.push([path, init?.method, init?.body ? JSON.parse(init.body) : undefined]);
      return new Response(JSON.stringify({ base: { cells: [] }, diff: [{ op: 'patch', key: 'cells', diff: [] }] }));
    }, 'Shared with me/a.ipynb');
    const live = { cells: [{ cell_type: 'code', source: 'x = 1' }], nbformat: 4 };
    const answer = await client.diff('v1', live);
    expect(answer.diff[0].key).toBe('cells');
    expect(calls).toEqual([['api/cs3collab/diff', 'POST', { path: 'Shared with me/a.ipynb', version: 'v1', current: live }]]);
  });

  it('shows why a diff was refused', async () => {
    const client = new VersionsClient(
      async () => new Response(JSON.stringify({ message: 'the notebook sent is 40000000 bytes' }), { status: 413 }),
      'a.ipynb'
    );
    await expect(client.diff('v1', {})).rejects.toThrow('the notebook sent is 40000000 bytes');
  });

  it('turns an error answer into its message', async () => {
    const client = new VersionsClient(
      async () => new Response(JSON.stringify({ message: 'editor access required' }), { status: 403 }),
      'a.ipynb'
    );
    await expect(client.list()).rejects.toThrow('editor access required');
  });
});

describe('panel helpers', () => {
  it('appends a page without showing an entry twice', () => {
    const shown = [version('current'), version('v2')];
    expect(mergePages(shown, [version('v2'), version('v1')]).map(v => v.key)).toEqual(['current', 'v2', 'v1']);
  });

  it('keeps what was scrolled to when a save adds a version at the head', () => {
    const older = Array.from({ length: 29 }, (_, i) => version(`v${28 - i}`)); // v28 .. v0
    const shown = [version('current', { current: true }), ...older];
    expect(refreshLimit(shown)).toBe(30 + PAGE_SIZE);
    // the refresh's page after a save: the previous content is now v29
    const page = [version('current', { current: true }), version('v29'), ...older];
    const kept = keepLoaded(shown, page);
    expect(kept.map(v => v.key).slice(-2)).toEqual(['v1', 'v0']);
    expect(kept).toHaveLength(31);
  });

  it('shows one page on a refresh when nothing older was shown or it is gone', () => {
    const page = Array.from({ length: 40 }, (_, i) => version(`v${40 - i}`));
    expect(refreshLimit([])).toBe(PAGE_SIZE);
    expect(keepLoaded([version('current', { current: true })], page)).toHaveLength(PAGE_SIZE);
    expect(keepLoaded([version('restored-away')], page)).toHaveLength(PAGE_SIZE);
    expect(refreshLimit(Array.from({ length: 600 }, (_, i) => version(`k${i}`)))).toBe(500);
  });

  it('titles a diff by file name, version time and "current"', () => {
    const now = new Date(2026, 10, 25, 15, 0);
    const v = version('v1', { time: new Date(2026, 10, 25, 13, 5).getTime() / 1000 });
    expect(diffTitle('Shared with me/analysis.ipynb', v, now)).toBe('analysis.ipynb: version today 13:05:00 → current');
  });

  it('says how long ago for recent versions, the exact time otherwise', () => {
    const now = new Date(2026, 10, 25, 15, 0, 0);
    const at = (h: number, m: number, sec = 0) => new Date(2026, 10, 25, h, m, sec).getTime() / 1000;
    expect(relativeTime(at(14, 59, 55), now)).toBe('just now');
    expect(relativeTime(at(14, 59, 18), now)).toBe('42 s ago');
    expect(relativeTime(at(14, 58, 0), now)).toBe('2 min ago');
    expect(relativeTime(at(12, 0, 0), now)).toBe('3 h ago');
    expect(relativeTime(at(1, 2, 3), now)).toBe('today 01:02:03');
    expect(relativeTime(at(15, 5, 0), now)).toBe('today 15:05:00'); // a clock ahead
  });

  it('gives the outputs of a version to preview as MIME bundles', () => {
    const cells = previewCells({
      cells: [
        { cell_type: 'markdown', source: ['# T', 'itle'] },
        {
          cell_type: 'code',
          source: 'x',
          outputs: [
            { output_type: 'execute_result', data: { 'text/plain': ['[1, ', '2]'], 'image/png': 'iVBOR' } },
            { output_type: 'stream', name: 'stdout', text: ['a\n', 'b\n'] },
            { output_type: 'error', ename: 'ValueError', evalue: 'bad', traceback: ['Traceback', 'ValueError: bad'] },
            { output_type: 'unknown' }
          ]
        }
      ]
    });
    expect(cells[0]).toEqual({ type: 'markdown', source: '# Title', outputs: [] });
    expect(cells[1].outputs).toEqual([
      { 'text/plain': '[1, 2]', 'image/png': 'iVBOR' },
      { 'text/plain': 'a\nb\n' },
      { 'text/plain': 'Traceback\nValueError: bad' }
    ]);
  });

  it('says what Ctrl+S did', () => {
    const now = new Date(2026, 10, 25, 15, 0);
    expect(saveFeedback('success', true, null, now)).toBe('Saved as a new CS3 version (today 15:00:00)');
    expect(saveFeedback('success', false, null, now)).toBe('Nothing changed since the last CS3 version');
    expect(saveFeedback('skipped', false, null, now)).toBe('Nothing changed since the last CS3 version');
    expect(saveFeedback('failed', false, 'The notebook could not be saved to storage; retrying.', now)).toBe(
      'Not saved as a CS3 version: the notebook could not be saved to storage; retrying. Your edits are kept and saving goes on.'
    );
  });

  it('marks a restore and words its notice', () => {
    const now = new Date(2026, 10, 25, 15, 0);
    const old = version('v1', { time: new Date(2026, 10, 25, 13, 5, 7).getTime() / 1000 });
    const back = version('v3', { restored_from: 'v1', authors: [{ uid: 'e@x', name: 'Albert Einstein' }] });
    expect(restoredLabel(back, [back, old], now)).toBe('restored from today 13:05:07 by Albert Einstein');
    expect(restoredLabel(back, [back], now)).toBe('restored from an earlier version by Albert Einstein');
    expect(restoredLabel(old, [back, old], now)).toBeNull();
    expect(restoredNotice('Albert Einstein', old.time, now)).toBe('Albert Einstein restored the version of today 13:05:07');
    expect(restoredNotice('', null, now)).toBe('Someone restored an earlier version');
  });

  it('formats time and authors', () => {
    const now = new Date(2026, 10, 25, 15, 0);
    expect(formatTime(new Date(2026, 10, 25, 13, 5).getTime() / 1000, now)).toBe('today 13:05:00');
    expect(formatTime(new Date(2026, 0, 2, 3, 4, 9).getTime() / 1000, now)).toBe('2026-01-02 03:04:09');
    expect(formatAuthors(version('v', { authors: [{ uid: 'e@x', name: 'Albert Einstein' }, { uid: 'm@x', name: '' }] }))).toBe(
      'Albert Einstein (x), m@x'
    );
    // with the institution the service names, and two people of one name told apart by their address
    expect(
      formatAuthors(
        version('v', {
          authors: [
            { uid: 'marie@cesnet.test', name: 'Marie Curie', idp: 'cesnet.test' },
            { uid: 'einstein@cernbox.test', name: 'Albert Einstein', idp: 'cernbox.test' }
          ]
        })
      )
    ).toBe('Marie Curie (cesnet.test), Albert Einstein (cernbox.test)');
    expect(
      formatAuthors(
        version('v', {
          authors: [
            { uid: 'marie@cesnet.test', name: 'Marie Curie', idp: 'cesnet.test' },
            { uid: 'mcurie@cesnet.test', name: 'Marie Curie', idp: 'cesnet.test' }
          ]
        })
      )
    ).toBe('Marie Curie (marie@cesnet.test), Marie Curie (mcurie@cesnet.test)');
    expect(formatAuthors(version('v'))).toBe('saved outside cs3collab');
  });

  it('checks tag names as the service does', () => {
    expect(tagNameProblem('sent to referee')).toBeNull();
    expect(tagNameProblem('  ')).not.toBeNull();
    expect(tagNameProblem('x'.repeat(65))).not.toBeNull();
    expect(tagNameProblem('a\nb')).not.toBeNull();
  });

  it('previews cell sources of a notebook', () => {
    const nb = { cells: [{ cell_type: 'markdown', source: ['# T', 'itle'] }, { cell_type: 'code', source: 'x = 1' }] };
    expect(previewCells(nb)).toEqual([
      { type: 'markdown', source: '# Title', outputs: [] },
      { type: 'code', source: 'x = 1', outputs: [] }
    ]);
    expect(previewCells(null)).toEqual([]);
  });
});
