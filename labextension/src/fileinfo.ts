/**
 * The File info dialog and its command, `cs3collab:file-info` (args
 * `{path?}`): owner, size, modified, your permissions, lock holder, shares
 * and number of versions of a CS3 file, from `GET /api/cs3collab/info`.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { infoIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { BrowseClient, IFileInfo, infoRows } from './browsemodel';

export const FILE_INFO_COMMAND = 'cs3collab:file-info';

/** Rows of the panel's lists carry their contents path in `data-path`. */
export const ROW_WITH_PATH = '.cs3collab-Row[data-path]';

/** The dialog's body: one `cs3collab-FileInfoRow` per field (`data-field`). */
export function fileInfoBody(info: IFileInfo): Widget {
  const body = new Widget();
  body.addClass('cs3collab-FileInfo');
  body.node.dataset.path = info.path;
  const table = document.createElement('dl');
  for (const row of infoRows(info)) {
    const line = document.createElement('div');
    line.className = 'cs3collab-FileInfoRow';
    line.dataset.field = row.field;
    const label = document.createElement('dt');
    label.textContent = row.label;
    const value = document.createElement('dd');
    value.textContent = row.value;
    line.append(label, value);
    table.append(line);
  }
  body.node.append(table);
  return body;
}

export async function showFileInfo(client: BrowseClient, path: string): Promise<void> {
  let info: IFileInfo;
  try {
    info = await client.info(path);
  } catch (error) {
    void showErrorMessage('File info', (error as Error).message);
    return;
  }
  await showDialog({
    title: `File info: ${info.name || path || 'My files'}`,
    body: fileInfoBody(info),
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}

/**
 * The path the command acts on when called without one: the row or file
 * browser item the context menu was opened on, else the selection of the
 * current file browser, else the current document.
 */
function defaultPath(app: JupyterFrontEnd, factory: IFileBrowserFactory): string | null {
  const row = app.contextMenuHitTest(node => node.matches?.(ROW_WITH_PATH) ?? false);
  if (row?.dataset.path !== undefined) {
    return row.dataset.path;
  }
  const item = app.contextMenuHitTest(node => node.classList?.contains('jp-DirListing-item') ?? false);
  let browser = factory.tracker.currentWidget;
  if (item) {
    factory.tracker.forEach(candidate => {
      if (candidate.node.contains(item)) {
        browser = candidate;
      }
    });
  }
  const selected = browser?.selectedItems().next();
  if (selected && !selected.done && selected.value) {
    return app.serviceManager.contents.localPath(selected.value.path);
  }
  const context = (app.shell.currentWidget as any)?.context;
  if (context && typeof context.path === 'string') {
    return typeof context.localPath === 'string'
      ? context.localPath
      : app.serviceManager.contents.localPath(context.path);
  }
  return null;
}

/** Register `cs3collab:file-info` and its context-menu entries. */
export function addFileInfoCommand(app: JupyterFrontEnd, factory: IFileBrowserFactory, client: BrowseClient): void {
  app.commands.addCommand(FILE_INFO_COMMAND, {
    label: 'File info',
    caption: 'Owner, size, permissions, lock, shares and versions of this CS3 file',
    icon: infoIcon,
    execute: async args => {
      const path = typeof args.path === 'string' ? args.path : defaultPath(app, factory);
      if (path === null) {
        void showErrorMessage('File info', 'Select a file first.');
        return;
      }
      await showFileInfo(client, path);
    }
  });
  app.contextMenu.addItem({ command: FILE_INFO_COMMAND, selector: '.jp-DirListing-item[data-isdir]', rank: 11 });
  app.contextMenu.addItem({ command: FILE_INFO_COMMAND, selector: ROW_WITH_PATH, rank: 1 });
}
