/**
 * The diff of a version against the live notebook, in the main area:
 * nbdime's own notebook diff widgets (NotebookDiffModel +
 * NotebookDiffWidget) over the answer of POST /api/cs3collab/diff, with
 * JupyterLab's rendermime registry for markdown and outputs. nbdime marks
 * added, removed and changed cells and shows changed sources and outputs
 * side by side; this widget only frames it.
 */

import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Panel, Widget } from '@lumino/widgets';
import type { IDiffEntry } from 'nbdime/lib/diff/diffentries';
import { NotebookDiffModel } from 'nbdime/lib/diff/model';
import { NotebookDiffWidget } from 'nbdime/lib/diff/widget';

import { diffTitle, INotebookDiff, IVersion, VersionsClient } from './versions';

export const DIFF_CLASS = 'cs3collab-Diff';

export interface IDiffViewOptions {
  client: VersionsClient;
  version: IVersion;
  /** the live notebook's nbformat JSON, unsaved edits included */
  current: unknown;
  rendermime: IRenderMimeRegistry;
}

export class DiffView extends Panel {
  constructor(options: IDiffViewOptions) {
    super();
    const { client, version } = options;
    this.id = `cs3collab-diff-${encodeURIComponent(client.path)}-${encodeURIComponent(version.key)}-${++DiffView._count}`;
    this.addClass(DIFF_CLASS);
    this.title.label = diffTitle(client.path, version);
    this.title.caption = `${client.path}: the version of ${new Date(version.time * 1000).toLocaleString()} (left) against the notebook as it is now, unsaved edits included (right)`;
    this.title.closable = true;
    this.node.dataset.key = version.key;

    const header = document.createElement('div');
    header.className = 'cs3collab-DiffHeader';
    const heading = document.createElement('div');
    heading.className = 'cs3collab-DiffHeading';
    heading.textContent = this.title.label;
    const legend = document.createElement('div');
    legend.className = 'cs3collab-DiffLegend';
    legend.append(
      swatch('cs3collab-DiffLegend-removed', 'removed (only in the version)'),
      swatch('cs3collab-DiffLegend-added', 'added (only now)')
    );
    const toggle = document.createElement('label');
    toggle.className = 'cs3collab-DiffHideUnchanged';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.addEventListener('change', () => this._scroller.toggleClass('cs3collab-mod-hideUnchanged', box.checked));
    toggle.append(box, document.createTextNode(' Hide unchanged cells'));
    header.append(heading, legend, toggle);
    this._status = document.createElement('div');
    this._status.className = 'cs3collab-DiffStatus';
    this._status.textContent = 'Comparing…';
    header.append(this._status);
    this.addWidget(new Widget({ node: header }));

    // nbdime's stylesheets apply under .nbdime-root
    this._scroller = new Panel();
    this._scroller.addClass('nbdime-root');
    this._scroller.addClass('cs3collab-DiffBody');
    this.addWidget(this._scroller);

    this.ready = this._load(options);
  }

  /** Settles once the diff is shown (or its error is). */
  readonly ready: Promise<void>;

  private async _load(options: IDiffViewOptions): Promise<void> {
    let answer: INotebookDiff;
    try {
      answer = await options.client.diff(options.version.key, options.current);
    } catch (error) {
      this._showError(`The diff cannot be computed: ${(error as Error).message}`);
      return;
    }
    if (this.isDisposed) {
      return;
    }
    try {
      const model = new NotebookDiffModel(answer.base, answer.diff as IDiffEntry[]);
      const widget = new NotebookDiffWidget({ model, rendermime: options.rendermime });
      this._scroller.addWidget(widget);
      await widget.init();
      const changed = model.cells.filter(cell => !cell.unchanged).length;
      this._status.textContent = changed
        ? `${changed} ${changed === 1 ? 'cell differs' : 'cells differ'}`
        : 'No cell differs';
      this.node.dataset.changedCells = String(changed);
    } catch (error) {
      this._showError(`The diff cannot be shown: ${(error as Error).message}`);
    }
  }

  private _showError(message: string): void {
    if (this.isDisposed) {
      return;
    }
    this._status.textContent = message;
    this._status.classList.add('cs3collab-mod-error');
  }

  private static _count = 0;
  private _scroller: Panel;
  private _status: HTMLElement;
}

function swatch(className: string, label: string): HTMLElement {
  const item = document.createElement('span');
  item.className = `cs3collab-DiffSwatch ${className}`;
  item.textContent = label;
  return item;
}
