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
import { ROW_WITH_PATH, targetPath } from './targetpath';

export const FILE_INFO_COMMAND = 'cs3collab:file-info';

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

/** Register `cs3collab:file-info` and its context-menu entries. */
export function addFileInfoCommand(app: JupyterFrontEnd, factory: IFileBrowserFactory, client: BrowseClient): void {
  app.commands.addCommand(FILE_INFO_COMMAND, {
    label: 'File info',
    caption: 'Owner, size, permissions, lock, shares and versions of this CS3 file',
    icon: infoIcon,
    execute: async args => {
      const path = typeof args.path === 'string' ? args.path : targetPath(app, factory);
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
