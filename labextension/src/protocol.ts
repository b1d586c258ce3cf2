/**
 * What the collaboration service says on a room WebSocket, in one place.
 *
 * The service (cs3collab/service: room.py, storage.py, versions.py,
 * protocol.py, errors.py) sends RAW frames (y-websocket message type 2, as
 * jupyter-collaboration's save reply) carrying JSON, and closes sockets with
 * the codes and JSON reasons below. Nothing here imports JupyterLab, so the
 * parsing is unit-tested in node.
 */

/** y-websocket / jupyter-collaboration message types (first varUint of a frame). */
export enum MessageType {
  Sync = 0,
  Awareness = 1,
  Raw = 2
}

/** RAW JSON message names the service sends. */
export const RAW_ROLE = 'cs3collab:role';
export const RAW_READ_ONLY = 'cs3collab:read-only';
export const RAW_SAVED = 'cs3collab:saved';
export const RAW_SAVE_FAILED = 'cs3collab:save-failed';
export const RAW_VERSIONS_CHANGED = 'cs3collab:versions-changed';
/** Shared kernels (cs3collab/service/execution.py): who runs which cell, and what happened to the kernel. */
export const RAW_EXECUTION = 'cs3collab:execution';
export const RAW_KERNEL = 'cs3collab:kernel';
export const RAW_RESTORED = 'cs3collab:restored';
/** The reply to this tab's own save request (Ctrl+S): `{"type":"save","responseTo","status"}`. */
export const RAW_SAVE_REPLY = 'save';
/** Key of the document's `state` map where the service keeps why the room is
 * read-only for everyone ("locked by <app> (<user>)", "" when it is not): it
 * comes with the sync, so a tab that missed the RAW message still knows. */
export const READ_ONLY_STATE = 'cs3collab:readOnly';

/** The room-wide read-only reason from the document's state value, if it says. */
export function readOnlyFromState(value: unknown): string | null | undefined {
  return typeof value === 'string' ? value || null : undefined;
}

export type Role = 'editor' | 'viewer';

/** `{"type":"cs3collab:role","role","readOnly"}`: sent on join to viewers and to
 * everyone while the room is read-only, and again whenever a role changes.
 * `readOnly` is null (may edit), `"viewer"`, or the room's reason (`"locked by <app>"`). */
export interface IRoleMessage {
  type: typeof RAW_ROLE;
  role: Role;
  readOnly: string | null;
}

/** `{"type":"cs3collab:read-only","reason"}`: another app's lock came or went (reason null). */
export interface IReadOnlyMessage {
  type: typeof RAW_READ_ONLY;
  reason: string | null;
}

/** `{"type":"cs3collab:saved","etag"}`: the room saved a new CS3 version. */
export interface ISavedMessage {
  type: typeof RAW_SAVED;
  etag: string;
}

/** `{"type":"cs3collab:save-failed","reason","message"}`: the room cannot save its
 * live state now (`reason` "invalid": not valid nbformat; "storage": CS3 refused or
 * is unreachable; "error": an internal error); it keeps retrying, and the next
 * `cs3collab:saved` ends it. */
export interface ISaveFailedMessage {
  type: typeof RAW_SAVE_FAILED;
  reason: string;
  message: string;
}

/** `{"type":"cs3collab:versions-changed"}`: a tag changed or a version was restored. */
export interface IVersionsChangedMessage {
  type: typeof RAW_VERSIONS_CHANGED;
}

/** `{"type":"cs3collab:execution","state","cellId","by","site","at","error"?}`: a run in the shared kernel. */
export interface IExecutionMessage {
  type: typeof RAW_EXECUTION;
  state: 'running' | 'done';
  cellId: string;
  by: string;
  site: string;
  at: string;
  error: string | null;
}

/** `{"type":"cs3collab:kernel","event","message"}`: the shared kernel started, restarted, died or was culled. */
export interface IKernelMessage {
  type: typeof RAW_KERNEL;
  event: string;
  message: string;
}

/** `{"type":"cs3collab:restored","by","from"}`: someone restored the version of time `from` (seconds). */
export interface IRestoredMessage {
  type: typeof RAW_RESTORED;
  by: string;
  from: number | null;
}

/** The service's answer to this tab's save request. */
export interface ISaveReplyMessage {
  type: typeof RAW_SAVE_REPLY;
  status: 'success' | 'skipped' | 'failed' | string;
  /** whether a CS3 version was written while the request was handled (ours; the stock frontend ignores it) */
  newVersion: boolean;
}

export type ServiceMessage =
  | ISaveReplyMessage
  | IRoleMessage
  | IReadOnlyMessage
  | ISavedMessage
  | IVersionsChangedMessage
  | ISaveFailedMessage
  | IExecutionMessage
  | IKernelMessage
  | IRestoredMessage;

/** WebSocket close codes of the service (CloseCode in cs3collab/service/protocol.py). */
export enum CloseCode {
  GoingAway = 1001,
  /** fatal for this tab; the reason is JSON {reason, reloadable, errorReason} */
  Session = 1003,
  Policy = 1008,
  TooBig = 1009,
  /** the Jupyter bridge lost the service connection, or the service could not
   * store the tab's last change (RETRY in protocol.py): y-websocket reconnects and resends */
  Lost = 1011,
  BadRequest = 4400,
  Forbidden = 4403,
  NotFound = 4404,
  ServerError = 4500
}

/** The 1003 close reason of a removed share (access.py). */
export const REVOKED_REASON = 'access_revoked';

/** `reason` values in a 1003 close's JSON (errors.py, access.py, handlers.py). */
export const CLOSE_REASONS: Record<string, string> = {
  access_revoked: 'access revoked',
  unauthenticated: 'signed out of CS3',
  forbidden: 'no access',
  not_found: 'file not found',
  initialization_error: 'the notebook could not be loaded',
  conflict: 'conflict in storage',
  read_only: 'read-only',
  unknown_session: 'session expired',
  version_mismatch: 'collaboration extension updated',
  storage_unavailable: 'storage unavailable',
  storage_error: 'storage error',
  bad_request: 'bad request',
  kernel_unavailable: 'the shared kernel is not available',
  session_expired: 'session expired',
  internal_error: 'server error',
  type_conflict: 'open as another document type by others: open it the same way to collaborate',
  too_many_connections: 'too many open tabs: close one and reopen this',
  invalid_update: 'your change would break the notebook',
  journal_unavailable: 'the service could not store your change'
};

/** Our key in a participant's awareness state: what they told the room about themselves. */
export const AWARENESS_FIELD = 'cs3collab';

export interface IAwarenessField {
  role: Role;
  /** the file's owner (from File info's permissions): shown as "owner" */
  owner?: boolean;
}

function readVarUint(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < bytes.length; i++) {
    const byte = bytes[i];
    value += (byte & 0x7f) * Math.pow(2, shift);
    shift += 7;
    if (byte < 0x80) {
      return [value, i + 1];
    }
    if (shift > 49) {
      break;
    }
  }
  throw new Error('truncated varUint');
}

/**
 * The service message in a RAW frame, or null for anything else (sync,
 * awareness, a conflict notice, malformed bytes).
 */
export function parseServiceMessage(data: ArrayBuffer | Uint8Array): ServiceMessage | null {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  try {
    const [type, afterType] = readVarUint(bytes, 0);
    if (type !== MessageType.Raw) {
      return null;
    }
    const [length, start] = readVarUint(bytes, afterType);
    if (start + length > bytes.length) {
      return null;
    }
    const text = new TextDecoder().decode(bytes.subarray(start, start + length));
    const payload = JSON.parse(text);
    if (!payload || typeof payload !== 'object' || typeof payload.type !== 'string') {
      return null;
    }
    switch (payload.type) {
      case RAW_ROLE:
        if (payload.role !== 'editor' && payload.role !== 'viewer') {
          return null;
        }
        return {
          type: RAW_ROLE,
          role: payload.role,
          readOnly: typeof payload.readOnly === 'string' ? payload.readOnly : null
        };
      case RAW_READ_ONLY:
        return { type: RAW_READ_ONLY, reason: typeof payload.reason === 'string' ? payload.reason : null };
      case RAW_SAVED:
        return { type: RAW_SAVED, etag: String(payload.etag ?? '') };
      case RAW_SAVE_FAILED:
        return {
          type: RAW_SAVE_FAILED,
          reason: String(payload.reason ?? ''),
          message: String(payload.message ?? '')
        };
      case RAW_VERSIONS_CHANGED:
        return { type: RAW_VERSIONS_CHANGED };
      case RAW_EXECUTION:
        if ((payload.state !== 'running' && payload.state !== 'done') || typeof payload.cellId !== 'string') {
          return null;
        }
        return {
          type: RAW_EXECUTION,
          state: payload.state,
          cellId: payload.cellId,
          by: String(payload.by ?? ''),
          site: String(payload.site ?? ''),
          at: String(payload.at ?? ''),
          error: typeof payload.error === 'string' ? payload.error : null
        };
      case RAW_KERNEL:
        return { type: RAW_KERNEL, event: String(payload.event ?? ''), message: String(payload.message ?? '') };
      case RAW_SAVE_REPLY:
        return { type: RAW_SAVE_REPLY, status: String(payload.status ?? ''), newVersion: payload.newVersion === true };
      case RAW_RESTORED:
        return {
          type: RAW_RESTORED,
          by: typeof payload.by === 'string' ? payload.by : '',
          from: typeof payload.from === 'number' ? payload.from : null
        };
      default:
        return null;
    }
  } catch {
    return null;
  }
}

/** Words for a close: the 1003 JSON's errorReason or known reason, else the raw reason or code. */
export function describeClose(code: number, reason: string): string {
  if (code === CloseCode.Session) {
    try {
      const payload = JSON.parse(reason);
      if (payload && typeof payload === 'object') {
        if (typeof payload.errorReason === 'string' && payload.errorReason) {
          return payload.errorReason;
        }
        if (typeof payload.reason === 'string') {
          return CLOSE_REASONS[payload.reason] ?? payload.reason;
        }
      }
    } catch {
      // not JSON: the reason as it came
    }
  }
  if (reason) {
    return reason;
  }
  switch (code) {
    case CloseCode.Forbidden:
      return 'no access';
    case CloseCode.NotFound:
      return 'file not found';
    case CloseCode.BadRequest:
      return 'bad request';
    case CloseCode.ServerError:
      return 'server error';
    default:
      return `connection closed (${code})`;
  }
}

/** The `reason` field of a 1003 close's JSON ("access_revoked", ...), else null. */
export function closeReasonOf(code: number, reason: string): string | null {
  if (code !== CloseCode.Session) {
    return null;
  }
  try {
    const payload = JSON.parse(reason);
    return payload && typeof payload === 'object' && typeof payload.reason === 'string' ? payload.reason : null;
  } catch {
    return null;
  }
}

/** Close codes after which y-websocket's reconnecting is pointless for this tab. */
export function isFatalClose(code: number): boolean {
  return code === CloseCode.Session;
}
