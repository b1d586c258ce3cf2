/**
 * The version history panel (right sidebar) of the current notebook: CS3
 * versions newest first with time, authors and tags, more loaded on scroll
 * (or "Load more"), a read-only preview, a diff against the live notebook
 * (diffview.ts), tagging and untagging, and a live restore for editors.
 */

import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import {
  formatAuthors,
  formatTime,
  relativeTime,
  restoredLabel,
  IVersion,
  keepLoaded,
  mergePages,
  PAGE_SIZE,
  previewCells,
  refreshLimit,
  tagNameProblem,
  VersionsClient
} from './versions';
import { Role } from './protocol';

/** What the panel needs to know about the notebook it shows. */
export interface IHistoryTarget {
  path: string;
  client: VersionsClient;
  role(): Role | null;
  /** Open the diff of `version` against the live notebook (a main-area widget). */
  diff(version: IVersion): void;
}

export class HistoryPanel extends Widget {
  /** Renders outputs in previews (JupyterLab's registry); without it they show as text. */
  rendermime: IRenderMimeRegistry | null = null;

  constructor() {
    super();
    this.id = 'cs3collab-history';
    this.addClass('cs3collab-HistoryPanel');
    this.title.caption = 'Version history';
    this._header = document.createElement('div');
    this._header.className = 'cs3collab-HistoryHeader';
    this._list = document.createElement('ul');
    this._list.className = 'cs3collab-VersionList';
    this._more = button('Load more', 'cs3collab-LoadMore', () => void this.loadMore());
    this._message = document.createElement('div');
    this._message.className = 'cs3collab-HistoryMessage';
    this.node.append(this._header, this._message, this._list, this._more);
    // scrolling "Load more" into view loads the next page (the button stays for keyboards)
    if (typeof IntersectionObserver !== 'undefined') {
      this._observer = new IntersectionObserver(entries => {
        this._moreInView = entries.some(e => e.isIntersecting);
        this._loadMoreIfInView();
      });
      this._observer.observe(this._more);
    }
    this.setTarget(null);
  }

  dispose(): void {
    this._observer?.disconnect();
    super.dispose();
  }

  get target(): IHistoryTarget | null {
    return this._target;
  }

  setTarget(target: IHistoryTarget | null): void {
    if (target?.path === this._target?.path && target?.client === this._target?.client) {
      return;
    }
    this._target = target;
    this._shown = [];
    this._total = 0;
    this._renderHeader();
    void this.refresh();
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  /** Reload the first page (after a save, a tag or a restore). */
  async refresh(): Promise<void> {
    const target = this._target;
    if (!target) {
      this._shown = [];
      this._render('Open a notebook to see its versions.');
      return;
    }
    const generation = ++this._generation;
    try {
      const page = await target.client.list(0, refreshLimit(this._shown));
      if (generation !== this._generation) {
        return;
      }
      this._shown = keepLoaded(this._shown, page.versions);
      this._total = page.total;
      this._render(page.versions.length ? '' : 'No versions yet.');
    } catch (error) {
      if (generation === this._generation) {
        this._render(`Versions cannot be listed: ${(error as Error).message}`);
      }
    }
  }

  async loadMore(): Promise<void> {
    const target = this._target;
    if (!target || this._loading) {
      return;
    }
    const generation = ++this._generation;
    this._loading = true;
    let superseded = false;
    try {
      const page = await target.client.list(this._shown.length, PAGE_SIZE);
      if (generation !== this._generation) {
        superseded = true;
        return;
      }
      this._shown = mergePages(this._shown, page.versions);
      this._total = page.total;
      this._render('');
    } catch (error) {
      void showErrorMessage('Version history', (error as Error).message);
    } finally {
      this._loading = false;
      if (superseded) {
        // a refresh replaced the list meanwhile; if it rendered while this load was under way,
        // its own check found us loading and "Load more", still in view, fires no new intersection
        window.setTimeout(() => this._loadMoreIfInView(), 0);
      }
    }
  }

  private _renderHeader(): void {
    const title = document.createElement('h3');
    title.textContent = 'Version history';
    const path = document.createElement('div');
    path.className = 'cs3collab-HistoryPath';
    path.textContent = this._target?.path ?? '';
    const actions = document.createElement('div');
    actions.className = 'cs3collab-HistoryActions';
    if (this._target) {
      actions.append(
        button('Tag current state…', 'cs3collab-TagCurrent', () => void this._tag('current')),
        button('Refresh', 'cs3collab-Refresh', () => void this.refresh())
      );
    }
    this._header.replaceChildren(title, path, actions);
  }

  private _render(message: string): void {
    this._message.textContent = message;
    this._list.replaceChildren(...this._shown.map(v => this._item(v)));
    // a style, not the `hidden` attribute: jp-Button's display rule would override it
    this._more.style.display = this._shown.length >= this._total ? 'none' : '';
    // a refresh that leaves "Load more" in view fires no new intersection: load on from here
    window.setTimeout(() => this._loadMoreIfInView(), 0);
  }

  private _loadMoreIfInView(): void {
    if (this._moreInView && this._target && this._shown.length < this._total && !this._loading) {
      void this.loadMore();
    }
  }

  private _item(version: IVersion): HTMLElement {
    const item = document.createElement('li');
    item.className = 'cs3collab-Version';
    item.dataset.key = version.key;
    item.dataset.etag = version.etag;
    const time = document.createElement('div');
    time.className = 'cs3collab-VersionTime';
    time.textContent = relativeTime(version.time) + (version.current ? ' · current' : '');
    time.title = formatTime(version.time);
    const authors = document.createElement('div');
    authors.className = 'cs3collab-VersionAuthors';
    authors.textContent = formatAuthors(version);
    const restored = restoredLabel(version, this._shown);
    const mark = document.createElement('div');
    mark.className = 'cs3collab-VersionRestored';
    mark.textContent = restored ?? '';
    mark.hidden = !restored;
    const editor = this._target?.role() === 'editor';
    const tags = document.createElement('div');
    tags.className = 'cs3collab-VersionTags';
    for (const name of version.tags) {
      const tag = document.createElement('span');
      tag.className = 'cs3collab-Tag';
      tag.dataset.tag = name;
      tag.textContent = name;
      if (editor) {
        const remove = document.createElement('button');
        remove.className = 'cs3collab-Untag';
        remove.title = `Remove the tag "${name}"`;
        remove.setAttribute('aria-label', remove.title);
        remove.textContent = '×';
        remove.addEventListener('click', () => void this._untag(name));
        tag.append(remove);
      }
      tags.append(tag);
    }
    const actions = document.createElement('div');
    actions.className = 'cs3collab-VersionActions';
    actions.append(button('Preview', 'cs3collab-Preview', () => void this._preview(version)));
    if (!version.current) {
      const diff = button('Diff', 'cs3collab-DiffAction', () => this._target?.diff(version));
      diff.title = 'Compare this version with the notebook as it is now';
      actions.append(diff);
    }
    if (editor) {
      actions.append(button('Tag…', 'cs3collab-TagVersion', () => void this._tag(version.key)));
      if (!version.current) {
        actions.append(button('Restore…', 'cs3collab-Restore', () => void this._restore(version)));
      }
    }
    item.append(time, authors, mark, tags, actions);
    return item;
  }

  private async _preview(version: IVersion): Promise<void> {
    const target = this._target;
    if (!target) {
      return;
    }
    try {
      const notebook = await target.client.content(version.key);
      const body = new Widget();
      body.addClass('cs3collab-Preview');
      const rendering: Promise<void>[] = [];
      for (const cell of previewCells(notebook)) {
        const pre = document.createElement('pre');
        pre.className = `cs3collab-PreviewCell cs3collab-PreviewCell-${cell.type}`;
        pre.textContent = cell.source;
        body.node.append(pre);
        for (const data of cell.outputs) {
          rendering.push(this._renderOutput(body.node, data));
        }
      }
      await Promise.all(rendering);
      await showDialog({
        title: `${target.path} — ${formatTime(version.time)} (read-only)`,
        body,
        buttons: [Dialog.okButton({ label: 'Close' })]
      });
    } catch (error) {
      void showErrorMessage('Preview', (error as Error).message);
    }
  }

  /** One output, rendered read-only (untrusted: no scripts, sanitized HTML) by JupyterLab's rendermime. */
  private async _renderOutput(host: HTMLElement, data: Record<string, any>): Promise<void> {
    const slot = document.createElement('div');
    slot.className = 'cs3collab-PreviewOutput';
    host.append(slot);
    const rendermime = this.rendermime;
    const mime = rendermime?.preferredMimeType(data, 'ensure');
    if (!rendermime || !mime) {
      slot.textContent = typeof data['text/plain'] === 'string' ? data['text/plain'] : '';
      return;
    }
    const renderer = rendermime.createRenderer(mime);
    slot.dataset.mimeType = mime;
    await renderer.renderModel(new MimeModel({ data, trusted: false }));
    slot.append(renderer.node);
  }

  private async _tag(key: string): Promise<void> {
    const target = this._target;
    if (!target) {
      return;
    }
    const input = document.createElement('input');
    input.className = 'cs3collab-TagName jp-mod-styled';
    input.placeholder = 'e.g. sent to referee';
    const body = new Widget({ node: input });
    const result = await showDialog({
      title: key === 'current' ? 'Tag the current state' : 'Tag this version',
      body,
      focusNodeSelector: 'input',
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Tag' })]
    });
    if (!result.button.accept) {
      return;
    }
    const name = input.value;
    const problem = tagNameProblem(name);
    if (problem) {
      void showErrorMessage('Tag', problem);
      return;
    }
    try {
      await target.client.tag(name, key);
      await this.refresh();
    } catch (error) {
      void showErrorMessage('Tag', (error as Error).message);
    }
  }

  private async _untag(name: string): Promise<void> {
    const target = this._target;
    if (!target) {
      return;
    }
    const result = await showDialog({
      title: 'Remove this tag?',
      body: `The tag "${name}" goes; the version itself stays in the history.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Remove tag' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await target.client.untag(name);
      await this.refresh();
    } catch (error) {
      void showErrorMessage('Remove tag', (error as Error).message);
    }
  }

  private async _restore(version: IVersion): Promise<void> {
    const target = this._target;
    if (!target) {
      return;
    }
    const result = await showDialog({
      title: 'Restore this version?',
      body:
        `The notebook goes back to the version of ${formatTime(version.time)} for everyone ` +
        'who has it open. The current state stays in the history.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Restore' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await target.client.restore(version.key);
      await this.refresh();
    } catch (error) {
      void showErrorMessage('Restore', (error as Error).message);
    }
  }

  private _target: IHistoryTarget | null = null;
  private _shown: IVersion[] = [];
  private _total = 0;
  private _generation = 0;
  private _loading = false;
  private _moreInView = false;
  private _observer: IntersectionObserver | null = null;
  private _header: HTMLElement;
  private _list: HTMLElement;
  private _more: HTMLButtonElement;
  private _message: HTMLElement;
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const element = document.createElement('button');
  element.className = `jp-Button jp-mod-styled jp-mod-small ${className}`;
  element.textContent = label;
  element.addEventListener('click', onClick);
  return element;
}
