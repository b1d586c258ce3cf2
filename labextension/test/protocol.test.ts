import { describe, expect, it } from 'vitest';

import { CloseCode, describeClose, isFatalClose, parseServiceMessage, readOnlyFromState } from '../src/protocol';

/** A RAW frame as cs3collab/service/protocol.py raw_json_message builds it. */
function raw(payload: unknown, type = 2): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(payload));
  const length: number[] = [];
  let n = body.length;
  do {
    length.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return new Uint8Array([type, ...length, ...body]);
}

describe('parseServiceMessage', () => {
  it('reads the role message', () => {
    expect(parseServiceMessage(raw({ type: 'cs3collab:role', role: 'viewer', readOnly: 'viewer' }))).toEqual({
      type: 'cs3collab:role',
      role: 'viewer',
      readOnly: 'viewer'
    });
  });

  it('reads read-only, saved and versions-changed', () => {
    expect(parseServiceMessage(raw({ type: 'cs3collab:read-only', reason: 'locked by office' }))).toEqual({
      type: 'cs3collab:read-only',
      reason: 'locked by office'
    });
    expect(parseServiceMessage(raw({ type: 'cs3collab:read-only', reason: null }))).toEqual({
      type: 'cs3collab:read-only',
      reason: null
    });
    expect(parseServiceMessage(raw({ type: 'cs3collab:saved', etag: '"abc"' }))).toEqual({
      type: 'cs3collab:saved',
      etag: '"abc"'
    });
    expect(parseServiceMessage(raw({ type: 'cs3collab:versions-changed' }))).toEqual({
      type: 'cs3collab:versions-changed'
    });
  });

  it('reads the save-failed notice', () => {
    const notice = { type: 'cs3collab:save-failed', reason: 'invalid', message: 'not valid nbformat; retrying' };
    expect(parseServiceMessage(raw(notice))).toEqual(notice);
  });

  it('reads a long (multi-byte length) message with non-ASCII text', () => {
    const reason = 'locked by ' + 'ü'.repeat(100);
    expect(parseServiceMessage(raw({ type: 'cs3collab:read-only', reason }))).toEqual({
      type: 'cs3collab:read-only',
      reason
    });
  });

  it("reads the reply to this tab's save request and a restore", () => {
    expect(parseServiceMessage(raw({ type: 'save', responseTo: 1, status: 'success', newVersion: true }))).toEqual({
      type: 'save',
      status: 'success',
      newVersion: true
    });
    // a reply without our field (another service) reads as "no new version"
    expect(parseServiceMessage(raw({ type: 'save', responseTo: 2, status: 'success' }))).toEqual({
      type: 'save',
      status: 'success',
      newVersion: false
    });
    expect(parseServiceMessage(raw({ type: 'cs3collab:restored', by: 'Albert Einstein', from: 12 }))).toEqual({
      type: 'cs3collab:restored',
      by: 'Albert Einstein',
      from: 12
    });
  });

  it('ignores everything else', () => {
    expect(parseServiceMessage(raw({ type: 'conflict' }))).toBeNull();
    expect(parseServiceMessage(raw({ type: 'cs3collab:role', role: 'owner' }))).toBeNull();
    expect(parseServiceMessage(raw({ type: 'cs3collab:role', role: 'editor' }, 0))).toBeNull(); // sync
    expect(parseServiceMessage(new Uint8Array([0, 0, 1, 0]))).toBeNull();
    expect(parseServiceMessage(new Uint8Array([2, 50, 123]))).toBeNull(); // truncated
    expect(parseServiceMessage(new Uint8Array([2, 3, 110, 111, 116]))).toBeNull(); // not JSON
    expect(parseServiceMessage(new Uint8Array([]))).toBeNull();
    expect(parseServiceMessage(raw([1, 2]))).toBeNull();
  });
});

describe('describeClose', () => {
  it('shows a 1003 errorReason, else the known reason in words', () => {
    const revoked = JSON.stringify({ reason: 'access_revoked', reloadable: false, errorReason: 'share revoked' });
    expect(describeClose(CloseCode.Session, revoked)).toBe('share revoked');
    expect(describeClose(CloseCode.Session, JSON.stringify({ reason: 'forbidden' }))).toBe('no access');
    expect(describeClose(CloseCode.Session, 'plain words')).toBe('plain words');
    // a notebook open as a notebook by others, opened with the Editor (kinds.py)
    const conflict = {
      reason: 'type_conflict',
      reloadable: false,
      errorReason: 'This is open as a notebook by others: open it as a notebook'
    };
    expect(describeClose(CloseCode.Session, JSON.stringify(conflict))).toBe(conflict.errorReason);
    expect(describeClose(CloseCode.Session, JSON.stringify({ reason: 'type_conflict' }))).toContain('open it the same way');
    expect(describeClose(CloseCode.Session, JSON.stringify({ reason: 'too_many_connections' }))).toContain('too many');
  });

  it('names codes without a reason', () => {
    expect(describeClose(CloseCode.NotFound, '')).toBe('file not found');
    expect(describeClose(1006, '')).toBe('connection closed (1006)');
  });

  it('treats only 1003 as fatal (y-websocket reconnects after the others)', () => {
    expect(isFatalClose(1003)).toBe(true);
    expect(isFatalClose(1011)).toBe(false);
    expect(isFatalClose(1006)).toBe(false);
  });
});

describe('readOnlyFromState', () => {
  it('reads the room-wide reason the service keeps in the document state', () => {
    expect(readOnlyFromState('locked by wopi (Albert Einstein)')).toBe('locked by wopi (Albert Einstein)');
  });
  it('takes an empty string as "not read-only"', () => {
    expect(readOnlyFromState('')).toBeNull();
  });
  it('says nothing when the state has no such key (another server)', () => {
    expect(readOnlyFromState(undefined)).toBeUndefined();
    expect(readOnlyFromState(3)).toBeUndefined();
  });
});
