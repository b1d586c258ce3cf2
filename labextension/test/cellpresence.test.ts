import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';

import {
  cellIndexOfCursor,
  CELL_AVATAR_CLASS,
  CELL_PRESENCE_CLASS,
  IDocumentLike,
  MAX_CELL_AVATARS,
  occupantsByCell,
  renderCellPresence
} from '../src/cellpresence';
import { participantsFrom } from '../src/presence';

const einstein = { username: 'einstein@cernbox.test', display_name: 'Albert Einstein', initials: 'AE', color: '#123456' };
const marie = { username: 'marie@cernbox.test', display_name: 'Marie Curie', initials: 'MC', color: '#654321' };
const richard = { username: 'richard@cernbox.test', display_name: 'Richard Feynman', initials: 'RF', color: '#00aa00' };

/** A notebook-shaped Y document (jupyter_ydoc's schema): cells of maps with a Y.Text source. */
function notebook(...sources: string[]): { doc: Y.Doc; texts: Y.Text[] } {
  const doc = new Y.Doc();
  const cells = doc.getArray<Y.Map<any>>('cells');
  const texts = sources.map(source => {
    const cell = new Y.Map<any>();
    const text = new Y.Text(source);
    cell.set('source', text);
    cells.push([cell]);
    return text;
  });
  return { doc, texts };
}

/** An awareness `cursors` field as @jupyter/collaboration publishes it, after a trip through JSON. */
function cursorIn(text: Y.Text, index: number, extra: Record<string, unknown> = {}): any[] {
  const head = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, index));
  return JSON.parse(JSON.stringify([{ anchor: head, head, primary: true, empty: true, ...extra }]));
}

describe('cellIndexOfCursor', () => {
  it("finds the cell whose source holds the client's primary cursor", () => {
    const { doc, texts } = notebook('# title', 'x = 1', 'print(x)');
    expect(cellIndexOfCursor({ cursors: cursorIn(texts[1], 3) }, doc, texts)).toBe(1);
    expect(cellIndexOfCursor({ cursors: cursorIn(texts[2], 0) }, doc, texts)).toBe(2);
  });

  it('prefers the primary cursor of a multi-cursor selection', () => {
    const { doc, texts } = notebook('a', 'b');
    const cursors = [...cursorIn(texts[0], 0, { primary: false }), ...cursorIn(texts[1], 1)];
    expect(cellIndexOfCursor({ cursors }, doc, texts)).toBe(1);
  });

  it('is -1 without a cursor, for a malformed one, or for a cell that is gone', () => {
    const { doc, texts } = notebook('a', 'b');
    expect(cellIndexOfCursor({}, doc, texts)).toBe(-1);
    expect(cellIndexOfCursor({ cursors: [] }, doc, texts)).toBe(-1);
    expect(cellIndexOfCursor({ cursors: [{ head: { item: 'nonsense' } }] }, doc, texts)).toBe(-1);
    const cursors = cursorIn(texts[1], 0);
    doc.getArray('cells').delete(1, 1);
    expect(cellIndexOfCursor({ cursors }, doc, texts.slice(0, 1))).toBe(-1);
  });
});

describe('occupantsByCell', () => {
  it('puts each other person on the cell of their cursor, never me', () => {
    const { doc, texts } = notebook('# title', 'x = 1', 'print(x)');
    const states = new Map<number, Record<string, any>>([
      [1, {}], // the server's own state
      [3, { user: einstein, cursors: cursorIn(texts[1], 0) }], // me
      [7, { user: marie, cursors: cursorIn(texts[1], 2) }],
      [9, { user: richard, cursors: cursorIn(texts[2], 0) }],
      [11, { user: { username: 'nobody@x', display_name: 'No Cursor' } }]
    ]);
    const cells = occupantsByCell(states, 3, doc, texts);
    expect([...cells.keys()].sort()).toEqual([1, 2]);
    expect(cells.get(1)!.map(p => p.username)).toEqual(['marie@cernbox.test']);
    expect(cells.get(2)!.map(p => p.username)).toEqual(['richard@cernbox.test']);
  });

  it('shows a person once per cell, and in each cell where one of their tabs is', () => {
    const { doc, texts } = notebook('a', 'b');
    const states = new Map<number, Record<string, any>>([
      [3, { user: einstein }],
      [7, { user: marie, cursors: cursorIn(texts[0], 0) }],
      [8, { user: marie, cursors: cursorIn(texts[0], 1) }], // her second tab, same cell
      [9, { user: marie, cursors: cursorIn(texts[1], 0) }] // her third tab, another cell
    ]);
    const cells = occupantsByCell(states, 3, doc, texts);
    expect(cells.get(0)!.map(p => p.displayName)).toEqual(['Marie Curie']);
    expect(cells.get(1)!.map(p => p.displayName)).toEqual(['Marie Curie']);
  });

  it('follows a person who moves to another cell', () => {
    const { doc, texts } = notebook('a', 'b');
    const states = new Map<number, Record<string, any>>([
      [3, { user: einstein }],
      [7, { user: marie, cursors: cursorIn(texts[0], 0) }]
    ]);
    expect([...occupantsByCell(states, 3, doc, texts).keys()]).toEqual([0]);
    states.set(7, { user: marie, cursors: cursorIn(texts[1], 1) });
    expect([...occupantsByCell(states, 3, doc, texts).keys()]).toEqual([1]);
    states.delete(7); // she left the room
    expect(occupantsByCell(states, 3, doc, texts).size).toBe(0);
  });
});

/** Just enough of the DOM for the renderer: elements with children, dataset and style. */
class FakeElement {
  className = '';
  textContent = '';
  title = '';
  dataset: Record<string, string> = {};
  style: Record<string, string> = {};
  children: FakeElement[] = [];
  parent: FakeElement | null = null;
  created = 0;

  append(...nodes: FakeElement[]): void {
    for (const node of nodes) {
      node.parent = this;
      this.children.push(node);
    }
  }
  replaceChildren(...nodes: FakeElement[]): void {
    this.children = [];
    this.append(...nodes);
  }
  remove(): void {
    if (this.parent) {
      this.parent.children = this.parent.children.filter(child => child !== this);
      this.parent = null;
    }
  }
}

function fakeDocument(): IDocumentLike & { created: number } {
  const doc = {
    created: 0,
    createElement(): HTMLElement {
      doc.created += 1;
      return new FakeElement() as unknown as HTMLElement;
    }
  };
  return doc;
}

function people(...users: (typeof marie)[]) {
  const states = new Map<number, Record<string, any>>(users.map((user, i) => [i + 10, { user }]));
  return participantsFrom(states, 1);
}

describe('renderCellPresence', () => {
  it('stacks an avatar per person with initials, color and "… (institution) is here"', () => {
    const cell = new FakeElement();
    renderCellPresence(cell as unknown as HTMLElement, people(marie, richard), fakeDocument());
    expect(cell.children).toHaveLength(1);
    const stack = cell.children[0];
    expect(stack.className).toBe(CELL_PRESENCE_CLASS);
    expect(stack.dataset.usernames).toBe('marie@cernbox.test richard@cernbox.test');
    expect(stack.children.map(a => [a.className, a.textContent, a.title, a.style.backgroundColor])).toEqual([
      [CELL_AVATAR_CLASS, 'MC', 'Marie Curie (cernbox.test) is here', '#654321'],
      [CELL_AVATAR_CLASS, 'RF', 'Richard Feynman (cernbox.test) is here', '#00aa00']
    ]);
  });

  it('updates the same stack in place, and removes it when nobody is left', () => {
    const cell = new FakeElement();
    const doc = fakeDocument();
    renderCellPresence(cell as unknown as HTMLElement, people(marie, richard), doc);
    const stack = cell.children[0];
    const made = doc.created;
    renderCellPresence(cell as unknown as HTMLElement, people(marie, richard), doc);
    expect(doc.created).toBe(made); // nothing changed: no new elements
    renderCellPresence(cell as unknown as HTMLElement, people(richard), doc);
    expect(cell.children).toEqual([stack]);
    expect(stack.dataset.usernames).toBe('richard@cernbox.test');
    expect(stack.children.map(a => a.textContent)).toEqual(['RF']);
    renderCellPresence(cell as unknown as HTMLElement, [], doc);
    expect(cell.children).toEqual([]);
  });

  it('shows at most a few avatars and counts the rest', () => {
    const cell = new FakeElement();
    const crowd = [marie, richard, einstein, { ...marie, username: 'pierre@cernbox.test', display_name: 'Pierre Curie', initials: 'PC' }];
    renderCellPresence(cell as unknown as HTMLElement, people(...crowd), fakeDocument());
    const avatars = cell.children[0].children;
    expect(avatars).toHaveLength(MAX_CELL_AVATARS + 1);
    expect(avatars[MAX_CELL_AVATARS].textContent).toBe(`+${crowd.length - MAX_CELL_AVATARS}`);
    expect(cell.children[0].dataset.usernames.split(' ')).toHaveLength(crowd.length);
  });
});
