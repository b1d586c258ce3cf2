/**
 * Who is in which cell: a small stack of avatars on every cell that holds
 * another participant's cursor or selection, from the room's awareness.
 *
 * A participant's place is their primary cursor, as the stock collaboration
 * frontend (@jupyter/collaboration's remote cursors) publishes it in the
 * awareness field `cursors`: Yjs relative positions into the Y.Text of the
 * cell source they are editing. The same mapping finds the cell for the
 * presence bar's "go to that person" (presencebar.ts).
 */

import type { NotebookPanel } from '@jupyterlab/notebook';
import * as Y from 'yjs';

import { IParticipant, participantsFrom } from './presence';

/** The Y type that holds a client's primary cursor (a cell's source), or null. */
export function cursorTarget(state: Record<string, any> | undefined, ydoc: Y.Doc): Y.AbstractType<any> | null {
  const cursors: any[] = Array.isArray(state?.cursors) ? state!.cursors : [];
  const cursor = cursors.find(c => c && (c.primary ?? true)) ?? cursors[0];
  const position = cursor?.head ?? cursor?.anchor;
  if (!position) {
    return null;
  }
  try {
    const relative = Y.createRelativePositionFromJSON(position);
    return Y.createAbsolutePositionFromRelativePosition(relative, ydoc)?.type ?? null;
  } catch {
    return null; // a position from another document, or malformed
  }
}

/** The index of the cell whose source (`sources[i]`, a Y.Text) holds the client's cursor, else -1. */
export function cellIndexOfCursor(
  state: Record<string, any> | undefined,
  ydoc: Y.Doc,
  sources: readonly unknown[]
): number {
  const target = cursorTarget(state, ydoc);
  return target ? sources.indexOf(target) : -1;
}

/**
 * The other people in each cell: cell index → participants whose cursor is
 * there (one entry per person, whichever of their tabs it comes from; in
 * the presence bar's order). My own cursors, in any of my tabs, are not shown.
 */
export function occupantsByCell(
  states: Map<number, Record<string, any>>,
  myClientId: number,
  ydoc: Y.Doc,
  sources: readonly unknown[]
): Map<number, IParticipant[]> {
  const cells = new Map<number, IParticipant[]>();
  for (const person of participantsFrom(states, myClientId)) {
    if (person.isMe) {
      continue;
    }
    for (const clientId of person.clientIds) {
      const index = cellIndexOfCursor(states.get(clientId), ydoc, sources);
      if (index < 0) {
        continue;
      }
      const here = cells.get(index) ?? [];
      if (!here.includes(person)) {
        here.push(person);
        cells.set(index, here);
      }
    }
  }
  return cells;
}

/** The avatar's tooltip on a cell: "Marie Curie (cesnet.test) is here". */
export function cellTooltipOf(person: IParticipant): string {
  return person.institution ? `${person.displayName} (${person.institution}) is here` : `${person.displayName} is here`;
}

export const CELL_PRESENCE_CLASS = 'cs3collab-CellPresence';
export const CELL_AVATAR_CLASS = 'cs3collab-CellAvatar';

/** At most this many avatars on one cell; more show as "+N". */
export const MAX_CELL_AVATARS = 3;

/** The DOM calls the renderer makes (the page's `document`; a small fake in unit tests). */
export interface IDocumentLike {
  createElement(tag: string): HTMLElement;
}

/**
 * Show `people` on `cell` (a cell's node): one `.cs3collab-CellPresence`
 * holding an avatar per person, kept in place and updated, or removed when
 * nobody is there. `data-usernames` lists them, space-separated.
 */
export function renderCellPresence(cell: HTMLElement, people: IParticipant[], doc: IDocumentLike = document): void {
  let stack = (Array.from(cell.children).find(child => child.className === CELL_PRESENCE_CLASS) ?? null) as HTMLElement | null;
  if (!people.length) {
    stack?.remove();
    return;
  }
  if (!stack) {
    stack = doc.createElement('div');
    stack.className = CELL_PRESENCE_CLASS;
    cell.append(stack);
  }
  const usernames = people.map(p => p.username).join(' ');
  if (stack.dataset.usernames === usernames && stack.dataset.look === lookOf(people)) {
    return; // unchanged: no DOM churn on every awareness heartbeat
  }
  stack.dataset.usernames = usernames;
  stack.dataset.look = lookOf(people);
  stack.title = people.map(cellTooltipOf).join('\n');
  const avatars: HTMLElement[] = people.slice(0, MAX_CELL_AVATARS).map(person => {
    const avatar = doc.createElement('span');
    avatar.className = CELL_AVATAR_CLASS;
    avatar.textContent = person.initials;
    avatar.title = cellTooltipOf(person);
    avatar.style.backgroundColor = person.color;
    avatar.dataset.username = person.username;
    return avatar;
  });
  if (people.length > MAX_CELL_AVATARS) {
    const more = doc.createElement('span');
    more.className = `${CELL_AVATAR_CLASS} cs3collab-mod-more`;
    more.textContent = `+${people.length - MAX_CELL_AVATARS}`;
    more.title = people.slice(MAX_CELL_AVATARS).map(cellTooltipOf).join('\n');
    avatars.push(more);
  }
  stack.replaceChildren(...avatars);
}

function lookOf(people: IParticipant[]): string {
  return people.map(p => `${p.initials}/${p.color}/${p.displayName}`).join('|');
}

/** A minimal y-protocols Awareness. */
interface IAwareness {
  clientID: number;
  getStates(): Map<number, Record<string, any>>;
  on(name: 'change', handler: () => void): void;
  off(name: 'change', handler: () => void): void;
}

/**
 * Keeps the per-cell avatars of one notebook up to date: on every awareness
 * change and whenever cells are added, removed or moved.
 */
export class CellPresence {
  constructor(private readonly panel: NotebookPanel) {
    this._awareness = ((panel.context.model.sharedModel as any).awareness as IAwareness) ?? null;
    this._awareness?.on('change', this.update);
    panel.context.model.cells.changed.connect(this._onCells, this);
    void panel.context.ready.then(this.update);
  }

  /** Re-render every cell's avatars from the awareness states now. */
  update = (): void => {
    if (this._disposed || !this._awareness) {
      return;
    }
    const notebook = this.panel.content;
    const ydoc = (this.panel.context.model.sharedModel as any).ydoc as Y.Doc;
    const sources = notebook.widgets.map(cell => (cell.model.sharedModel as any).ysource);
    const occupants = occupantsByCell(this._awareness.getStates(), this._awareness.clientID, ydoc, sources);
    notebook.widgets.forEach((cell, index) => renderCellPresence(cell.node, occupants.get(index) ?? []));
  };

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._awareness?.off('change', this.update);
    this.panel.context.model.cells.changed.disconnect(this._onCells, this);
  }

  private _onCells(): void {
    // the notebook creates the new cells' widgets after the model changed
    requestAnimationFrame(this.update);
  }

  private _awareness: IAwareness | null;
  private _disposed = false;
}
