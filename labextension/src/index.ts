/**
 * @cs3collab/labextension: presence bar and status chip in each notebook's
 * toolbar, who is in which cell, the version history panel in the right
 * sidebar, the diff of a version against the live notebook, the CS3 file
 * browser panel in the left sidebar (browser.ts) and the Share dialog
 * (sharingplugin.ts).
 */

import { ICollaborativeContentProvider } from '@jupyter/collaborative-drive';
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { historyIcon } from '@jupyterlab/ui-components';

import { CellPresence } from './cellpresence';
import { CellRuns } from './execution';
import { DiffView } from './diffview';
import { browserPlugin } from './browser';
import { HistoryPanel } from './historypanel';
import { PresenceBar } from './presencebar';
import { guardCommands, NotebookReadOnly, readOnlyOf } from './readonly';
import { ACCESS_CHANGED_EVENT, readOnlyCause } from './readonlystate';
import { OwnerName, showRevoked, takeOverRevocation } from './revocation';
import { BrowseClient } from './browsemodel';
import { sharingPlugin } from './sharingplugin';
import { providerFor, RoomChannel, yWebsocketOf } from './room';
import { serverFetcher } from './serverfetcher';
import { VersionsClient } from './versions';

const PLUGIN_ID = '@cs3collab/labextension:plugin';

/** How often a panel looks for a replaced provider (y-websocket "Retry"), in ms. */
const REBIND_INTERVAL_MS = 1000;


const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'cs3collab: presence, status and version history of notebooks in CS3',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ICollaborativeContentProvider, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    contentProvider: ICollaborativeContentProvider | null,
    labShell: ILabShell | null
  ) => {
    const settings = app.serviceManager.serverSettings;
    const fetch = serverFetcher(settings);
    const bars = new WeakMap<NotebookPanel, PresenceBar>();
    const clients = new WeakMap<NotebookPanel, VersionsClient>();
    const readOnly = new WeakMap<NotebookPanel, NotebookReadOnly>();
    const browse = new BrowseClient(fetch);
    guardCommands(app, tracker, widget => readOnlyOf(readOnly, widget));

    const history = new HistoryPanel();
    history.rendermime = rendermime; // previews render outputs, read-only
    history.title.icon = historyIcon;
    app.shell.add(history, 'right', { rank: 900 });

    const clientOf = (panel: NotebookPanel): VersionsClient => {
      let client = clients.get(panel);
      if (!client || client.path !== panel.context.localPath) {
        client = new VersionsClient(fetch, panel.context.localPath);
        clients.set(panel, client);
      }
      return client;
    };

    const showCurrent = (): void => {
      const panel = tracker.currentWidget;
      if (!panel) {
        history.setTarget(null);
        return;
      }
      history.setTarget({
        path: panel.context.localPath,
        client: clientOf(panel),
        role: () => bars.get(panel)?.role ?? null,
        diff: version => {
          const view = new DiffView({
            client: clientOf(panel),
            version,
            current: panel.context.model.toJSON(),
            rendermime
          });
          app.shell.add(view, 'main');
          app.shell.activateById(view.id);
        }
      });
    };

    tracker.widgetAdded.connect((_, panel) => {
      const channel = new RoomChannel();
      const bar = new PresenceBar(panel, channel);
      bars.set(panel, bar);
      panel.toolbar.insertAfter('spacer', 'cs3collab-presence', bar);
      const cells = new CellPresence(panel);
      const runs = new CellRuns(panel);
      const state = new NotebookReadOnly(panel, () => app.commands.notifyCommandChanged());
      readOnly.set(panel, state);
      bar.onAccessChanged = access => state.set(readOnlyCause(access));
      const owner = new OwnerName(browse, panel, mine => bar.setOwner(mine));
      let revokedShown = false;
      const onRevoked = () => {
        if (!revokedShown) {
          revokedShown = true;
          void showRevoked(app, panel, owner.name);
        }
      };
      const rebind = () => {
        const provider = providerFor((contentProvider as any)?.providers, panel.context.model.sharedModel);
        const yws = yWebsocketOf(provider);
        takeOverRevocation(provider, yws, onRevoked); // before the channel's own close handler
        channel.rebind(yws);
      };
      void panel.context.ready.then(rebind);
      const timer = window.setInterval(rebind, REBIND_INTERVAL_MS);
      const refreshIfShown = () => {
        if (tracker.currentWidget === panel && history.isVisible) {
          void history.refresh();
        }
      };
      bar.onVersionsChanged = refreshIfShown;
      bar.onRoleChanged = () => {
        refreshIfShown(); // which actions the panel offers
        window.dispatchEvent(new Event(ACCESS_CHANGED_EVENT));
      };
      panel.context.pathChanged.connect(() => {
        if (tracker.currentWidget === panel) {
          showCurrent();
        }
      });
      panel.disposed.connect(() => {
        window.clearInterval(timer);
        cells.dispose();
        runs.dispose();
        state.dispose();
        bar.dispose();
      });
    });
    tracker.currentChanged.connect(showCurrent);
    labShell?.currentChanged.connect(() => {
      if (history.isVisible && !history.target) {
        showCurrent();
      }
    });
    showCurrent();
  }
};

export default [plugin, browserPlugin, sharingPlugin];
