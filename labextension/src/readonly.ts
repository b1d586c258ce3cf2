/**
 * Read-only in the browser: a notebook tab that may not change its document
 * (a viewer, a room another app locked, a revoked share) refuses every change
 * in the tab itself, not only at the service.
 *
 * It uses JupyterLab 4's own read-only machinery:
 *
 * - the notebook model's `readOnly` state (`INotebookModel.readOnly`, a
 *   `stateChanged` of the document model; the notebook's search and replace
 *   and its close prompt honour it);
 * - each cell widget's `readOnly` (`Cell.readOnly`, which sets CodeMirror's
 *   `readOnly` facet on the cell's editor: no typing, pasting or dropping
 *   text), with the cell's `syncEditable` turned off meanwhile (the notebook
 *   turns it on, which would write `editable: false` into the shared
 *   document); lifting it turns `syncEditable` back on, which reloads the
 *   cell's own `editable` metadata; cells added later get it too;
 * - command enablement: the notebook commands that change the document
 *   (readonlystate.ts, `DOCUMENT_COMMANDS`: add, delete, move, cut, paste,
 *   merge, split, change type, clear outputs, run, undo/redo) and Save are
 *   disabled for that tab. Lumino runs a key binding only when its command is
 *   enabled, and menus, context menus and toolbar buttons show it disabled, so
 *   `b`, `x`, `dd`, Shift+Enter and the toolbar's buttons all do nothing.
 *   JupyterLab has no public hook to add a condition to another plugin's
 *   command, so the guard wraps the registered command's `isEnabled` (found
 *   in the registry's command table, feature-tested; without it the editors
 *   and the model are still read-only);
 * - dragging cells with the mouse (the prompt area's drag handle): the
 *   notebook widget (`Notebook._evtMouseDown` → `_startDrag`, `_evtDrop` →
 *   `NotebookActions.moveCells`, @jupyterlab/notebook 4.6 widget.ts) moves
 *   cells without a command and without looking at the model's `readOnly`, so
 *   a read-only notebook refuses the drop by Lumino's drag-and-drop protocol
 *   (@lumino/dragdrop): a drop target accepts a drag by cancelling
 *   `lm-dragenter`/`lm-dragover` and naming a `dropAction`; ours answers
 *   `'none'` for cells (mime `application/vnd.jupyter.cells`) in the capture
 *   phase, before the notebook's own handler, so the drag shows "no drop" and
 *   `lm-drop` never reaches the notebook (from this tab or another notebook);
 * - JupyterLab's own read-only indicator in the toolbar (the item
 *   `read-only-indicator` that DocumentWidget adds once, from the contents
 *   model's `writable`, when the tab opens) follows the state live, both
 *   ways: it is replaced by a label of the same name and look ("notebook is
 *   read-only", its tooltip saying why) and removed when the tab may edit.
 *   Ours sits first in the toolbar's right-hand group, so a toolbar too narrow
 *   for all its items moves the kernel's items into "More commands", not it.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { PanelLayout, Widget } from '@lumino/widgets';

import { DOCUMENT_COMMANDS, ReadOnlyCause, readOnlyTitle, SAVE_COMMANDS } from './readonlystate';

/** The stock toolbar item name of the read-only indicator (DocumentWidget). */
const INDICATOR = 'read-only-indicator';
type Cell = NotebookPanel['content']['widgets'][number];
const GUARDED = Symbol('cs3collab-readonly-guard');
/** What a notebook puts in a drag of cells (@jupyterlab/notebook widget.ts, `JUPYTER_CELL_MIME`). */
const CELLS_MIME = 'application/vnd.jupyter.cells';
/** Lumino's drag-and-drop events a drop target answers (@lumino/dragdrop). */
const DRAG_EVENTS = ['lm-dragenter', 'lm-dragover', 'lm-drop'];

/** One notebook tab's read-only state, applied to its model, cells and toolbar. */
export class NotebookReadOnly {
  constructor(
    readonly panel: NotebookPanel,
    private readonly _changed: () => void
  ) {
    panel.context.model.cells.changed.connect(this._onCellsChanged, this);
    for (const type of DRAG_EVENTS) {
      panel.content.node.addEventListener(type, this._refuseDrop, true);
    }
  }

  get cause(): ReadOnlyCause {
    return this._cause;
  }

  get readOnly(): boolean {
    return this._cause !== null;
  }

  /** Apply `cause` (null: the tab may edit again). */
  set(cause: ReadOnlyCause): void {
    if (this.panel.isDisposed) {
      return;
    }
    const changed = cause !== this._cause;
    this._cause = cause;
    this.panel.node.dataset.cs3collabReadOnly = cause ?? '';
    if (!changed && this._applied) {
      return;
    }
    this._applied = true;
    this._applyToCells();
    this.panel.context.model.readOnly = cause !== null;
    this._indicator(cause !== null);
    this._changed();
  }

  dispose(): void {
    this.panel.context.model.cells.changed.disconnect(this._onCellsChanged, this);
    for (const type of DRAG_EVENTS) {
      this.panel.content.node.removeEventListener(type, this._refuseDrop, true);
    }
  }

  /** While read-only, a drag of cells over (or dropped on) this notebook is refused. */
  private _refuseDrop = (event: Event): void => {
    const drag = event as Event & { mimeData?: { hasData(mime: string): boolean }; dropAction?: string };
    if (this._cause === null || !drag.mimeData?.hasData(CELLS_MIME)) {
      return;
    }
    // cancelled with dropAction 'none': the drag's answer is "no drop here", and the
    // notebook's own handler (bubble phase) never sees it
    drag.dropAction = 'none';
    event.preventDefault();
    event.stopImmediatePropagation();
  };

  private _onCellsChanged(): void {
    if (this._cause !== null) {
      // the notebook made the new cells' widgets in its own handler, before this one
      void Promise.resolve().then(() => this._applyToCells());
    }
  }

  private _applyToCells(): void {
    for (const cell of this.panel.content.widgets) {
      if (this._cause !== null) {
        if (!this._unsynced.has(cell)) {
          // the notebook syncs a cell's read-only state into its `editable`
          // metadata: off while we hold it, so nothing is written to the document
          this._unsynced.set(cell, cell.syncEditable);
          cell.syncEditable = false;
        }
        cell.readOnly = true;
      } else if (this._unsynced.has(cell)) {
        cell.readOnly = false;
        const sync = this._unsynced.get(cell);
        this._unsynced.delete(cell);
        cell.syncEditable = sync; // true: reloads the cell's own `editable` metadata
      }
    }
  }

  private _indicator(show: boolean): void {
    const toolbar = this.panel.toolbar;
    for (const item of toolbarItems(toolbar, INDICATOR)) {
      if (!show || item !== this._label) {
        // ours goes when the tab may edit again; the stock one (made once, from the
        // contents model, when the tab opened) is replaced by ours
        item.dispose();
      }
    }
    if (!show) {
      this._label = null;
      return;
    }
    if (!this._label || this._label.isDisposed) {
      this._label = new ReadOnlyLabel();
      // first of the toolbar's right-hand group (just after the spacer), not
      // before the kernel name as the stock one: when a narrow tab (1280 px with
      // the file browser open) overflows, the ReactiveToolbar moves the last items
      // into "More commands", and why the notebook refuses typing must not be one
      const placed =
        toolbar.insertAfter('spacer', INDICATOR, this._label) ||
        toolbar.insertBefore('kernelName', INDICATOR, this._label);
      if (!placed) {
        toolbar.addItem(INDICATOR, this._label);
      }
    }
    this._label.setCause(this._cause);
  }

  private _cause: ReadOnlyCause = null;
  private _applied = false;
  private _label: ReadOnlyLabel | null = null;
  private _unsynced = new WeakMap<Cell, boolean | undefined>();
}

/**
 * The toolbar's items called `name`, in the toolbar itself or in its overflow
 * ("More commands": a ReactiveToolbar moves what does not fit into a popup,
 * out of its layout, where `names()` no longer lists it).
 */
function toolbarItems(toolbar: Widget, name: string): Widget[] {
  const places: Widget[][] = [[...((toolbar.layout as PanelLayout | null)?.widgets ?? [])]];
  const popup = (toolbar as any).popupOpener?.popup;
  const inPopup = popup?.widgets ?? (popup?.layout as PanelLayout | undefined)?.widgets;
  if (inPopup) {
    places.push([...inPopup]);
  }
  return places.flat().filter(widget => widget.node.dataset.jpItemName === name);
}

/** JupyterLab's read-only indicator, in its own look (`jp-ToolbarLabelComponent`), saying why. */
class ReadOnlyLabel extends Widget {
  constructor() {
    super();
    this.addClass('cs3collab-ReadOnlyIndicator');
    this._span = document.createElement('span');
    this._span.className = 'jp-ToolbarLabelComponent';
    this._span.textContent = 'notebook is read-only';
    this.node.append(this._span);
  }

  setCause(cause: ReadOnlyCause): void {
    this._span.title = readOnlyTitle(cause);
    this.node.dataset.cause = cause ?? '';
  }

  private _span: HTMLElement;
}

/**
 * Disables the document-changing commands for read-only tabs. `isReadOnly`
 * answers for a widget (the tracker's current notebook, the shell's current
 * widget for Save). Commands registered later (the table of contents, the
 * cell toolbar) are guarded when they are added.
 */
export function guardCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  isReadOnly: (widget: Widget | null) => boolean
): boolean {
  const table = (app.commands as any)._commands;
  if (!(table instanceof Map)) {
    console.warn('cs3collab: cannot disable notebook commands in read-only tabs (no command table)');
    return false;
  }
  const wrap = (id: string, target: () => Widget | null) => {
    const command = table.get(id);
    if (!command || command[GUARDED] || typeof command.isEnabled !== 'function') {
      return;
    }
    const original = command.isEnabled;
    command.isEnabled = (args: any) => !isReadOnly(target()) && original.call(undefined, args);
    command[GUARDED] = true;
  };
  const guardAll = () => {
    DOCUMENT_COMMANDS.forEach(id => wrap(id, () => tracker.currentWidget));
    SAVE_COMMANDS.forEach(id => wrap(id, () => app.shell.currentWidget));
  };
  guardAll();
  app.commands.commandChanged.connect((_, change) => {
    if (change.type === 'added') {
      guardAll();
    }
  });
  return true;
}

/** Whether `widget` is a notebook tab that is read-only now. */
export function readOnlyOf(states: WeakMap<NotebookPanel, NotebookReadOnly>, widget: Widget | null): boolean {
  return widget instanceof NotebookPanel ? (states.get(widget)?.readOnly ?? false) : false;
}
