/**
 * The `cs3collab:share` command ("Share…"): in the file browser's context
 * menu (files and folders, in either file browser, and the CS3 panel's rows)
 * and as a "Share" button in each notebook's
 * toolbar, next to the presence bar. It opens the Share dialog.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { shareIcon, ToolbarButton } from '@jupyterlab/ui-components';

import { openShareDialog } from './sharedialog';
import { serverFetcher } from './serverfetcher';
import { SharingClient } from './sharing';
import { ROW_WITH_PATH, targetPath } from './targetpath';

export const SHARE_COMMAND = 'cs3collab:share';

const DIR_ITEM = '.jp-DirListing-item[data-isdir]';

export const sharingPlugin: JupyterFrontEndPlugin<void> = {
  id: '@cs3collab/labextension:sharing',
  description: 'cs3collab: share files and notebooks in CS3 with people, groups and other institutions',
  autoStart: true,
  requires: [INotebookTracker, IFileBrowserFactory],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, factory: IFileBrowserFactory) => {
    const client = new SharingClient(serverFetcher(app.serviceManager.serverSettings));
    /** The path a call is about: its argument, else the right-clicked row or item, the document, the selection. */
    const pathFor = (args: { path?: unknown }): string | null =>
      typeof args.path === 'string' && args.path ? args.path : targetPath(app, factory);

    app.commands.addCommand(SHARE_COMMAND, {
      label: 'Share…',
      caption: 'Share with people, groups or contacts at other institutions',
      icon: shareIcon,
      isEnabled: args => pathFor(args) !== null,
      execute: async args => {
        const path = pathFor(args);
        if (path) {
          await openShareDialog(client, path);
        }
      }
    });
    app.contextMenu.addItem({ command: SHARE_COMMAND, selector: DIR_ITEM, rank: 9 });
    app.contextMenu.addItem({ command: SHARE_COMMAND, selector: ROW_WITH_PATH, rank: 2 });

    tracker.widgetAdded.connect((_, panel) => {
      const button = new ToolbarButton({
        icon: shareIcon,
        label: 'Share',
        tooltip: 'Share this notebook…',
        className: 'cs3collab-ShareButton',
        onClick: () => void app.commands.execute(SHARE_COMMAND, { path: panel.context.localPath })
      });
      // once the toolbar holds its configured items (they are added as the settings load,
      // by index): next to the presence bar, else after the spacer
      void panel.context.ready.then(() => {
        if (button.isDisposed || panel.isDisposed) {
          return;
        }
        const toolbar = panel.toolbar;
        if (!toolbar.insertAfter('cs3collab-presence', 'cs3collab-share', button)) {
          if (!toolbar.insertAfter('spacer', 'cs3collab-share', button)) {
            toolbar.addItem('cs3collab-share', button);
          }
        }
      });
      panel.disposed.connect(() => button.dispose());
    });
  }
};
