/**
 * When a notebook tab may change its document, as a pure function, and the
 * commands that change a notebook: what readonly.ts applies to JupyterLab.
 * Nothing here imports JupyterLab, so it is unit-tested in node.
 */

import { ConnectionState } from './presence';
import { Role } from './protocol';

/** Why this tab may not change the document, or null when it may. */
export type ReadOnlyCause = 'viewer' | 'locked' | 'revoked' | null;

export interface IAccessState {
  /** my role (null: not known yet) */
  role: Role | null;
  /** the room's read-only reason other than my role ("locked by <app>") */
  lockedReason: string | null;
  /** the service removed my access (a revocation close or message) */
  revoked: boolean;
  connection: ConnectionState;
}

/**
 * Why the tab is read-only: a revocation wins, then my role, then the room's
 * lock. While the role is not known yet (the first sync), the tab is not
 * made read-only: the contents model's `writable` decides that first.
 */
export function readOnlyCause(state: IAccessState): ReadOnlyCause {
  if (state.revoked) {
    return 'revoked';
  }
  if (state.role === 'viewer') {
    return 'viewer';
  }
  if (state.lockedReason) {
    return 'locked';
  }
  return null;
}

/**
 * The notebook commands that change the document (its cells, their sources,
 * outputs or types, or run code that writes outputs), disabled while the tab
 * is read-only. Menus (Edit, Run), the cell toolbar and key bindings reach
 * the same commands, so disabling these disables them all. Reading,
 * selecting, copying, searching, collapsing and scrolling stay.
 */
export const DOCUMENT_COMMANDS: readonly string[] = [
  'notebook:change-cell-to-code',
  'notebook:change-cell-to-markdown',
  'notebook:change-cell-to-raw',
  'notebook:clear-all-cell-outputs',
  'notebook:clear-cell-output',
  'notebook:cut-cell',
  'notebook:cut-selected-text',
  'notebook:delete-cell',
  'notebook:duplicate-below',
  'notebook:insert-cell-above',
  'notebook:insert-cell-below',
  'notebook:insert-heading-above',
  'notebook:insert-heading-below',
  'notebook:merge-cell-above',
  'notebook:merge-cell-below',
  'notebook:merge-cells',
  'notebook:move-cell-down',
  'notebook:move-cell-up',
  'notebook:paste-and-replace-cell',
  'notebook:paste-cell-above',
  'notebook:paste-cell-below',
  'notebook:paste-text',
  'notebook:redo',
  'notebook:redo-cell-action',
  'notebook:replace-selection',
  'notebook:restart-and-run-to-selected',
  'notebook:restart-clear-output',
  'notebook:restart-run-all',
  'notebook:run-all-above',
  'notebook:run-all-below',
  'notebook:run-all-cells',
  'notebook:run-cell',
  'notebook:run-cell-and-insert-below',
  'notebook:run-cell-and-select-next',
  'notebook:split-cell-at-cursor',
  'notebook:undo',
  'notebook:undo-cell-action',
  'cell-toolbar:delete',
  'toc:run-cells'
];

/** Commands that save the current document: disabled while its tab is read-only
 * (a viewer, a foreign lock, a revocation), where "Save a copy" is the way. */
export const SAVE_COMMANDS: readonly string[] = ['docmanager:save'];

/** The read-only indicator's tooltip: why this tab cannot change the notebook. */
export function readOnlyTitle(cause: ReadOnlyCause): string {
  switch (cause) {
    case 'viewer':
      return 'You are a viewer of this notebook: you follow it live but cannot change it.';
    case 'locked':
      return 'Another application holds the lock on this notebook: nobody can change it until it is released.';
    case 'revoked':
      return 'Your access to this notebook was removed. "Save a copy to my files" keeps what you see.';
    default:
      return '';
  }
}

/** The revocation dialog's sentence: "Albert Einstein removed your access to analysis.ipynb". */
export function revokedSentence(ownerName: string | null, fileName: string): string {
  return `${ownerName || 'The owner'} removed your access to ${fileName}`;
}

/**
 * A free name for a copy in the user's own files: "analysis (copy).ipynb",
 * then "analysis (copy 2).ipynb", ... `taken(name)` says whether a name is used.
 */
export async function copyName(fileName: string, taken: (name: string) => Promise<boolean>): Promise<string> {
  const dot = fileName.lastIndexOf('.');
  const stem = dot > 0 ? fileName.slice(0, dot) : fileName;
  const ext = dot > 0 ? fileName.slice(dot) : '';
  for (let n = 1; n < 100; n++) {
    const candidate = `${stem} (copy${n === 1 ? '' : ` ${n}`})${ext}`;
    if (!(await taken(candidate))) {
      return candidate;
    }
  }
  throw new Error(`no free name for a copy of ${fileName}`);
}

/** A window event a notebook tab sends when its role or access changed, so that
 * the CS3 panel's "Shared with me" list (which shows each share's role) reloads. */
export const ACCESS_CHANGED_EVENT = 'cs3collab:access-changed';
