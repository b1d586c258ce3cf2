import { describe, expect, it } from 'vitest';

import { closeReasonOf, REVOKED_REASON } from '../src/protocol';
import { copyName, DOCUMENT_COMMANDS, readOnlyCause, readOnlyTitle, revokedSentence } from '../src/readonlystate';

const base = { role: 'editor' as const, lockedReason: null, revoked: false, connection: 'connected' as const };

describe('readOnlyCause', () => {
  it('lets an editor edit a room nobody locked', () => {
    expect(readOnlyCause(base)).toBeNull();
  });

  it('does not decide before the role is known', () => {
    expect(readOnlyCause({ ...base, role: null })).toBeNull();
  });

  it('makes a viewer read-only', () => {
    expect(readOnlyCause({ ...base, role: 'viewer' })).toBe('viewer');
  });

  it('makes everyone read-only while another app holds the lock', () => {
    expect(readOnlyCause({ ...base, lockedReason: 'locked by Collabora Online' })).toBe('locked');
  });

  it('puts a revocation before the role and the lock', () => {
    expect(readOnlyCause({ ...base, role: 'viewer', lockedReason: 'locked by x', revoked: true })).toBe('revoked');
  });

  it('keeps an editor editable while reconnecting (edits sync when it is back)', () => {
    expect(readOnlyCause({ ...base, connection: 'reconnecting' })).toBeNull();
  });
});

describe('the guarded commands', () => {
  it('cover adding, deleting, moving, pasting, changing type, clearing outputs and running', () => {
    for (const id of [
      'notebook:insert-cell-below',
      'notebook:insert-cell-above',
      'notebook:delete-cell',
      'notebook:cut-cell',
      'notebook:move-cell-up',
      'notebook:paste-cell-below',
      'notebook:change-cell-to-markdown',
      'notebook:clear-all-cell-outputs',
      'notebook:run-cell-and-select-next',
      'notebook:run-all-cells'
    ]) {
      expect(DOCUMENT_COMMANDS).toContain(id);
    }
  });

  it('leave reading, selecting and copying alone', () => {
    for (const id of ['notebook:copy-cell', 'notebook:move-cursor-down', 'notebook:enter-command-mode']) {
      expect(DOCUMENT_COMMANDS).not.toContain(id);
    }
  });
});

describe('readOnlyTitle', () => {
  it('says why, in words', () => {
    expect(readOnlyTitle('viewer')).toMatch(/viewer/);
    expect(readOnlyTitle('revoked')).toMatch(/Save a copy to my files/);
    expect(readOnlyTitle(null)).toBe('');
  });
});

describe('closeReasonOf', () => {
  it('reads the reason code of a 1003 close', () => {
    expect(closeReasonOf(1003, JSON.stringify({ reason: REVOKED_REASON, reloadable: false }))).toBe(REVOKED_REASON);
  });

  it('is null for other codes and for reasons that are not JSON', () => {
    expect(closeReasonOf(1011, JSON.stringify({ reason: REVOKED_REASON }))).toBeNull();
    expect(closeReasonOf(1003, 'gone')).toBeNull();
  });
});

describe('revocation words', () => {
  it('name who removed the access and the file, without ids', () => {
    expect(revokedSentence('Albert Einstein', 'analysis.ipynb')).toBe(
      'Albert Einstein removed your access to analysis.ipynb'
    );
    expect(revokedSentence(null, 'analysis.ipynb')).toBe('The owner removed your access to analysis.ipynb');
  });

  it('find a free name for the copy', async () => {
    const used = new Set(['analysis (copy).ipynb', 'analysis (copy 2).ipynb']);
    expect(await copyName('analysis.ipynb', async name => used.has(name))).toBe('analysis (copy 3).ipynb');
    expect(await copyName('notes', async () => false)).toBe('notes (copy)');
  });
});
