/**
 * Shared execution in the notebook: who ran each cell (from the cell metadata
 * the service writes, `metadata.cs3collab.execution = {by, site, at}`), who
 * is running what (the service's `cs3collab:execution` messages) and the
 * kernel's notices in words (`cs3collab:kernel`). See docs/execution.md.
 */

import type { NotebookPanel } from '@jupyterlab/notebook';

import { IExecutionMessage } from './protocol';

export interface IAttribution {
  by: string;
  site: string;
  at: string;
}

/** The attribution in a cell's metadata, or null when the cell was not run in a shared kernel. */
export function attributionOf(metadata: unknown): IAttribution | null {
  const run = (metadata as any)?.cs3collab?.execution;
  if (!run || typeof run !== 'object' || typeof run.by !== 'string' || !run.by) {
    return null;
  }
  return { by: run.by, site: typeof run.site === 'string' ? run.site : '', at: typeof run.at === 'string' ? run.at : '' };
}

/** "14:05 UTC" for an ISO time (the day too when it is not `today`'s). */
export function shortTime(iso: string, today: Date = new Date()): string {
  const when = new Date(iso);
  if (isNaN(when.getTime())) {
    return '';
  }
  const hhmm = `${String(when.getUTCHours()).padStart(2, '0')}:${String(when.getUTCMinutes()).padStart(2, '0')} UTC`;
  const sameDay = when.toISOString().slice(0, 10) === today.toISOString().slice(0, 10);
  return sameDay ? hhmm : `${when.toISOString().slice(0, 10)} ${hhmm}`;
}

/** "Run by Marie Curie (cesnet.test) at 14:05 UTC". */
export function describeAttribution(run: IAttribution, today: Date = new Date()): string {
  const site = run.site ? ` (${run.site})` : '';
  const time = shortTime(run.at, today);
  return `Run by ${run.by}${site}${time ? ` at ${time}` : ''}`;
}

/** Who is running cells now, from the service's execution messages (cell id → run). */
export function applyExecution(running: Map<string, IExecutionMessage>, message: IExecutionMessage): void {
  if (message.state === 'running') {
    running.set(message.cellId, message);
  } else {
    running.delete(message.cellId);
  }
}

/** The presence bar's words for the runs in progress ("" when none). */
export function runningLabel(running: Map<string, IExecutionMessage>): string {
  const people = [...new Set([...running.values()].map(run => run.by))];
  if (!people.length) {
    return '';
  }
  const cells = running.size === 1 ? 'a cell' : `${running.size} cells`;
  return people.length === 1 ? `▶ ${people[0]} is running ${cells}` : `▶ ${people.join(', ')} are running ${cells}`;
}

export const CELL_RUN_CLASS = 'cs3collab-CellRun';

/** The DOM calls the renderer makes (the page's `document`; a small fake in unit tests). */
export interface IDocumentLike {
  createElement(tag: string): HTMLElement;
}

/** Show (or remove) the attribution line at the bottom of a cell node. */
export function renderCellRun(cell: HTMLElement, run: IAttribution | null, doc: IDocumentLike = document): void {
  let line = (Array.from(cell.children).find(child => child.className === CELL_RUN_CLASS) ?? null) as HTMLElement | null;
  if (!run) {
    line?.remove();
    return;
  }
  const text = describeAttribution(run);
  if (!line) {
    line = doc.createElement('div');
    line.className = CELL_RUN_CLASS;
    cell.append(line);
  }
  if (line.textContent !== text) {
    line.textContent = text;
    line.title = run.at;
  }
}

/** Keeps every cell's attribution line in step with its metadata. */
export class CellRuns {
  constructor(private readonly panel: NotebookPanel) {
    panel.context.model.cells.changed.connect(this._onCells, this);
    void panel.context.ready.then(this._watch);
  }

  update = (): void => {
    if (this._disposed) {
      return;
    }
    for (const cell of this.panel.content.widgets) {
      renderCellRun(cell.node, cell.model.type === 'code' ? attributionOf(cell.model.metadata) : null);
    }
  };

  dispose(): void {
    this._disposed = true;
    this.panel.context.model.cells.changed.disconnect(this._onCells, this);
  }

  private _watch = (): void => {
    for (const cell of this.panel.content.widgets) {
      if (!this._watched.has(cell.model)) {
        this._watched.add(cell.model);
        cell.model.metadataChanged.connect(this.update, this);
      }
    }
    this.update();
  };

  private _onCells(): void {
    requestAnimationFrame(this._watch); // the notebook creates the new cells' widgets after the model changed
  }

  private _watched = new WeakSet<object>();
  private _disposed = false;
}
